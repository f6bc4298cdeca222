//! The calls to platforms end to end through the `PlatformHttp` port: doubles that
//! behave like Moodle, Canvas and Brightspace, every failure path, and the token
//! cache shared by function instances. Each test asserts the exact requests sent.

mod brightspace;
mod canvas;
mod failures;
mod moodle;
mod quirks;
mod support;
mod token_cache;
