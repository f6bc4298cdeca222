"""A tiny headless "browser" for LTI launch tests.

* follows 301/302/303/307/308 redirects itself, recording every hop;
* keeps its own cookie jar, filled from Set-Cookie headers it parses itself,
  so attributes Python's cookie modules do not know (``Partitioned``) are no
  trouble, and ``Secure`` cookies are sent to loopback hosts over plain http
  (as Chromium does for http://127.0.0.1 and http://localhost);
* applies SameSite like a current browser (missing = Lax): by default the
  "site" is scheme + host, as in real browsers where two ports of 127.0.0.1
  are one site; ``Browser(site_by_port=True)`` counts the port too, so a
  launch between two local servers is treated as cross-site and only
  ``SameSite=None; Secure`` cookies survive the platform's form POST;
* auto-submits the form of a 200 HTML page that submits itself by script
  (posting its hidden and other input fields to the resolved form action),
  and follows ``window.location = "..."`` and meta-refresh redirects.

    b = Browser()
    resp, hops = b.get("http://127.0.0.1:5000/launch/start?user=learner")
"""
from __future__ import annotations

import dataclasses
import ipaddress
import re
import time
import typing as t
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlencode, urljoin, urlsplit

import requests

Fields = t.List[t.Tuple[str, str]]


# --------------------------------------------------------------------------
# cookies
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Cookie:
    name: str
    value: str
    domain: str  # lower-case host or Domain attribute, no leading dot
    host_only: bool
    path: str
    expires: t.Optional[float]  # epoch seconds; None = session cookie
    secure: bool
    http_only: bool
    same_site: str  # "strict" | "lax" | "none" | "" (unspecified: treated as lax)
    partitioned: bool
    raw: str = ""

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now


def _is_loopback(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _default_path(path: str) -> str:
    if not path.startswith("/") or path.count("/") <= 1:
        return "/"
    return path[: path.rfind("/")]


def _path_matches(request_path: str, cookie_path: str) -> bool:
    if request_path == cookie_path:
        return True
    if request_path.startswith(cookie_path):
        return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    return False


class CookieJar:
    """Cookies keyed by (domain, path, name), like a browser (ports ignored)."""

    def __init__(self) -> None:
        self._cookies: t.Dict[t.Tuple[str, str, str], Cookie] = {}
        self.rejected: t.List[t.Tuple[str, str]] = []  # (Set-Cookie, reason)

    def __iter__(self) -> t.Iterator[Cookie]:
        now = time.time()
        return iter([c for c in self._cookies.values() if not c.expired(now)])

    def get(self, name: str, host: t.Optional[str] = None) -> t.Optional[Cookie]:
        for c in self:
            if c.name == name and (host is None or c.domain == host):
                return c
        return None

    def clear(self) -> None:
        self._cookies.clear()

    def set_from_header(self, url: str, header: str, now: t.Optional[float] = None) -> None:
        now = time.time() if now is None else now
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts_list = header.split(";")
        name, sep, value = parts_list[0].partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            self.rejected.append((header, "no name=value"))
            return
        attrs: t.Dict[str, str] = {}
        for attr in parts_list[1:]:
            k, _, v = attr.partition("=")
            attrs[k.strip().lower()] = v.strip()

        expires: t.Optional[float] = None
        if "max-age" in attrs:
            try:
                expires = now + int(attrs["max-age"])
            except ValueError:
                pass
        elif "expires" in attrs:
            try:
                expires = parsedate_to_datetime(attrs["expires"]).timestamp()
            except (TypeError, ValueError):
                pass

        domain_attr = attrs.get("domain", "").lstrip(".").lower()
        if domain_attr:
            ok = host == domain_attr or (not _is_ip(host) and host.endswith("." + domain_attr))
            if not ok:
                self.rejected.append((header, f"Domain {domain_attr} does not match {host}"))
                return
            domain, host_only = domain_attr, False
        else:
            domain, host_only = host, True
        path = attrs.get("path") or ""
        if not path.startswith("/"):
            path = _default_path(parts.path or "/")

        secure = "secure" in attrs
        secure_context = parts.scheme == "https" or _is_loopback(host)
        same_site = attrs.get("samesite", "").lower()
        if same_site not in ("strict", "lax", "none"):
            same_site = ""
        if secure and not secure_context:
            self.rejected.append((header, "Secure cookie from an insecure origin"))
            return
        if same_site == "none" and not secure:
            self.rejected.append((header, "SameSite=None without Secure"))
            return
        if name.startswith("__Secure-") and not secure:
            self.rejected.append((header, "__Secure- prefix without Secure"))
            return
        if name.startswith("__Host-") and (not secure or not host_only or path != "/"):
            self.rejected.append((header, "__Host- prefix rules violated"))
            return

        key = (domain, path, name)
        if expires is not None and expires <= now:
            self._cookies.pop(key, None)
            return
        self._cookies[key] = Cookie(
            name=name,
            value=value,
            domain=domain,
            host_only=host_only,
            path=path,
            expires=expires,
            secure=secure,
            http_only="httponly" in attrs,
            same_site=same_site,
            partitioned="partitioned" in attrs,
            raw=header,
        )

    def header_for(self, url: str, method: str, cross_site: bool) -> t.Tuple[t.Optional[str], t.List[str]]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        secure_context = parts.scheme == "https" or _is_loopback(host)
        now = time.time()
        chosen: t.List[Cookie] = []
        for c in self._cookies.values():
            if c.expired(now):
                continue
            if c.host_only:
                if host != c.domain:
                    continue
            elif not (host == c.domain or host.endswith("." + c.domain)):
                continue
            if not _path_matches(parts.path or "/", c.path):
                continue
            if c.secure and not secure_context:
                continue
            if cross_site:
                if c.same_site == "strict":
                    continue
                if c.same_site in ("lax", "") and method.upper() not in ("GET", "HEAD"):
                    continue
            chosen.append(c)
        chosen.sort(key=lambda c: -len(c.path))
        if not chosen:
            return None, []
        return "; ".join(f"{c.name}={c.value}" for c in chosen), [c.name for c in chosen]


# --------------------------------------------------------------------------
# HTML: forms and script redirects
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Form:
    action: t.Optional[str]
    method: str
    id: t.Optional[str]
    name: t.Optional[str]
    fields: Fields
    hidden: Fields


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: t.List[Form] = []
        self.scripts: t.List[str] = []
        self.onloads: t.List[str] = []
        self.meta_refresh: t.Optional[str] = None
        self._form: t.Optional[Form] = None
        self._in_script = False
        self._textarea: t.Optional[t.Tuple[str, t.List[str]]] = None

    def handle_starttag(self, tag: str, attrs: t.List[t.Tuple[str, t.Optional[str]]]) -> None:
        a = {k.lower(): (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action"), (a.get("method") or "get").lower(), a.get("id"), a.get("name"), [], [])
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            name = a.get("name")
            typ = (a.get("type") or "text").lower()
            if not name or "disabled" in a or typ in ("submit", "button", "image", "reset", "file"):
                return
            if typ in ("checkbox", "radio") and "checked" not in a:
                return
            value = a.get("value", "on" if typ in ("checkbox", "radio") else "")
            self._form.fields.append((name, value))
            if typ == "hidden":
                self._form.hidden.append((name, value))
        elif tag == "textarea" and self._form is not None and a.get("name"):
            self._textarea = (a["name"], [])
        elif tag == "script":
            self._in_script = True
            self.scripts.append("")
        elif tag == "body" and a.get("onload"):
            self.onloads.append(a["onload"])
        elif tag == "meta" and (a.get("http-equiv") or "").lower() == "refresh":
            m = re.search(r"url\s*=\s*['\"]?([^'\";]+)", a.get("content") or "", re.I)
            if m:
                self.meta_refresh = m.group(1).strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "script":
            self._in_script = False
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            self._form.fields.append((self._textarea[0], "".join(self._textarea[1])))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        elif self._textarea is not None:
            self._textarea[1].append(data)


_JS_LOCATION = re.compile(
    r"""(?:window\.|top\.|self\.|document\.)?location(?:\.href)?\s*=\s*(['"])(.+?)\1"""
    r"""|location\.(?:replace|assign)\(\s*(['"])(.+?)\3\s*\)"""
)


def find_auto_submit_form(page: str) -> t.Optional[Form]:
    """The form a page submits by itself on load, or None."""
    p = _PageParser()
    p.feed(page)
    p.close()
    code = "\n".join(p.scripts + p.onloads)
    if not p.forms or "submit(" not in code:
        return None
    m = re.search(r"""getElementById\(\s*['"]([^'"]+)['"]\s*\)""", code)
    if m:
        for f in p.forms:
            if f.id == m.group(1):
                return f
    m = re.search(r"document\.forms\[\s*(\d+)\s*\]", code)
    if m and int(m.group(1)) < len(p.forms):
        return p.forms[int(m.group(1))]
    m = re.search(r"""document\.forms\[\s*['"]([^'"]+)['"]\s*\]|document\.forms\.(\w+)""", code)
    if m:
        wanted = m.group(1) or m.group(2)
        for f in p.forms:
            if wanted in (f.name, f.id):
                return f
    return p.forms[0]


def find_script_redirect(page: str) -> t.Optional[str]:
    p = _PageParser()
    p.feed(page)
    p.close()
    for code in p.scripts + p.onloads:
        m = _JS_LOCATION.search(code)
        if m:
            return m.group(2) or m.group(4)
    return p.meta_refresh


# --------------------------------------------------------------------------
# the browser
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Hop:
    method: str
    url: str
    status: int
    reason: str  # start | redirect | auto-form | script-redirect
    location: t.Optional[str] = None
    sent: t.Optional[Fields] = None  # form fields sent (POST body or GET query)
    cookies_sent: t.List[str] = dataclasses.field(default_factory=list)
    cross_site: bool = False

    def __repr__(self) -> str:
        extra = f" -> {self.location}" if self.location else ""
        return f"<{self.reason} {self.method} {self.url} {self.status}{extra}>"


@dataclasses.dataclass
class Result:
    response: requests.Response
    hops: t.List[Hop]

    def __iter__(self) -> t.Iterator[t.Any]:  # resp, hops = browser.get(...)
        return iter((self.response, self.hops))

    @property
    def status_code(self) -> int:
        return self.response.status_code

    def json(self) -> t.Any:
        return self.response.json()


class TooManyHops(RuntimeError):
    pass


OnRequest = t.Callable[[str, str, t.Optional[Fields]], t.Optional[t.Tuple[str, str, t.Optional[Fields]]]]


class Browser:
    def __init__(
        self,
        *,
        max_hops: int = 25,
        timeout: float = 15.0,
        site_by_port: bool = False,
        follow_forms: bool = True,
        user_agent: str = "lti-lambda-interop-browser/1.0",
    ) -> None:
        self.session = requests.Session()
        # requests must neither store nor send cookies: our jar does
        self.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        self.session.headers["User-Agent"] = user_agent
        self.session.headers["Accept"] = "text/html,application/json;q=0.9,*/*;q=0.8"
        self.cookies = CookieJar()
        self.max_hops = max_hops
        self.timeout = timeout
        self.site_by_port = site_by_port
        self.follow_forms = follow_forms

    # -- public API ---------------------------------------------------------

    def get(self, url: str, **kw: t.Any) -> Result:
        return self.navigate("GET", url, None, **kw)

    def post(self, url: str, data: t.Union[Fields, t.Mapping[str, str]], **kw: t.Any) -> Result:
        return self.navigate("POST", url, data, **kw)

    def navigate(
        self,
        method: str,
        url: str,
        data: t.Union[Fields, t.Mapping[str, str], None] = None,
        *,
        initiator: t.Optional[str] = None,
        on_request: t.Optional[OnRequest] = None,
        stop: t.Optional[t.Callable[[Hop, requests.Response], bool]] = None,
    ) -> Result:
        """Load ``url`` and follow redirects, auto-submitting forms and script
        redirects, until a page that does neither. ``on_request(method, url,
        fields)`` may return a replacement (method, url, fields) for any
        request (to tamper with a step); ``stop(hop, response)`` ends early."""
        fields: t.Optional[Fields] = list(data.items()) if isinstance(data, t.Mapping) else data
        hops: t.List[Hop] = []
        chain: t.List[str] = [initiator] if initiator else []  # URLs that led here
        reason = "start"
        while True:
            if len(hops) >= self.max_hops:
                raise TooManyHops(f"more than {self.max_hops} hops: {hops}")
            if on_request is not None:
                replaced = on_request(method, url, fields)
                if replaced is not None:
                    method, url, fields = replaced
            resp, hop = self._request(method, url, fields, chain, reason)
            hops.append(hop)
            nxt = self._next_step(method, url, fields, resp)
            if nxt is not None:
                hop.location = nxt[1]
            if (stop is not None and stop(hop, resp)) or nxt is None:
                return Result(resp, hops)
            if nxt[3] == "redirect":
                chain.append(url)
            else:
                chain = [url]
            method, url, fields, reason = nxt

    def _next_step(
        self, method: str, url: str, fields: t.Optional[Fields], resp: requests.Response
    ) -> t.Optional[t.Tuple[str, str, t.Optional[Fields], str]]:
        """Where a browser goes next from this response: (method, url, fields, reason)."""
        if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
            nxt = urljoin(url, resp.headers["Location"])
            if resp.status_code in (307, 308) or method == "HEAD":
                return method, nxt, fields, "redirect"  # method and body kept
            return "GET", nxt, None, "redirect"
        if not (self.follow_forms and resp.status_code == 200 and "html" in resp.headers.get("Content-Type", "")):
            return None
        page = resp.text
        form = find_auto_submit_form(page)
        if form is not None:
            action = urljoin(url, form.action) if form.action else url
            if form.method == "post":
                return "POST", action, list(form.fields), "auto-form"
            target = urlsplit(action)._replace(query=urlencode(form.fields), fragment="").geturl()
            return "GET", target, None, "auto-form"
        target = find_script_redirect(page)
        if target:
            return "GET", urljoin(url, target), None, "script-redirect"
        return None

    # -- internals ----------------------------------------------------------

    def _site(self, url: str) -> t.Tuple[str, str, t.Optional[int]]:
        p = urlsplit(url)
        port = p.port or (443 if p.scheme == "https" else 80)
        return (p.scheme, (p.hostname or "").lower(), port if self.site_by_port else None)

    def _request(
        self, method: str, url: str, fields: t.Optional[Fields], chain: t.List[str], reason: str
    ) -> t.Tuple[requests.Response, Hop]:
        target_site = self._site(url)
        cross_site = any(self._site(u) != target_site for u in chain)
        headers: t.Dict[str, str] = {}
        cookie_header, names = self.cookies.header_for(url, method, cross_site)
        if cookie_header:
            headers["Cookie"] = cookie_header
        if chain and reason in ("auto-form", "script-redirect"):
            src = urlsplit(chain[-1])
            origin = f"{src.scheme}://{src.netloc}"
            same_origin = urlsplit(url).netloc == src.netloc and urlsplit(url).scheme == src.scheme
            headers["Referer"] = chain[-1] if same_origin else origin + "/"
            if method == "POST":
                headers["Origin"] = origin
        resp = self.session.request(
            method,
            url,
            data=fields if method not in ("GET", "HEAD") else None,
            headers=headers,
            allow_redirects=False,
            timeout=self.timeout,
        )
        for set_cookie in _set_cookie_headers(resp):
            self.cookies.set_from_header(url, set_cookie)
        hop = Hop(
            method=method,
            url=url,
            status=resp.status_code,
            reason=reason,
            sent=list(fields) if fields is not None else None,
            cookies_sent=names,
            cross_site=cross_site,
        )
        return resp, hop


def _set_cookie_headers(resp: requests.Response) -> t.List[str]:
    raw_headers = getattr(resp.raw, "headers", None)
    if raw_headers is not None and hasattr(raw_headers, "getlist"):
        return list(raw_headers.getlist("Set-Cookie"))
    value = resp.headers.get("Set-Cookie")
    return [value] if value else []
