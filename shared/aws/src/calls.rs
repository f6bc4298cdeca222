//! Counting the AWS calls a function makes: an SDK interceptor, so the count covers
//! every operation the real clients send (the test of the per-launch call budget, and
//! a figure for the logs). It also records when each call started and ended, so a test
//! can tell how many calls were on the critical path (calls that overlap in time were
//! made concurrently and cost one round trip).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One call: `service:Operation`, when it started and when it ended.
#[derive(Debug, Clone)]
pub struct Call {
    pub name: String,
    pub started: Instant,
    pub ended: Option<Instant>,
}

/// Counts operations per service; clone it into each client's config.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    total: Arc<AtomicUsize>,
    calls: Arc<Mutex<Vec<Call>>>,
    service: &'static str,
}

/// The index of the call an operation is, kept in its config bag.
#[derive(Debug, Clone, Copy)]
struct CallIndex(usize);

impl Storable for CallIndex {
    type Storer = StoreReplace<Self>;
}

impl CallCounter {
    /// A counter for calls of `service` (e.g. "dynamodb").
    pub fn for_service(&self, service: &'static str) -> Self {
        Self {
            total: self.total.clone(),
            calls: self.calls.clone(),
            service,
        }
    }

    /// Calls counted so far, across services.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Call>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calls counted so far, as `service:Operation`, then clears the list and count.
    pub fn take(&self) -> Vec<String> {
        self.take_calls().into_iter().map(|c| c.name).collect()
    }

    /// The calls counted so far with their times, then clears the list and count.
    pub fn take_calls(&self) -> Vec<Call> {
        self.total.store(0, Ordering::SeqCst);
        std::mem::take(&mut *self.lock())
    }
}

/// How many round trips `calls` cost one after the other: calls that overlap in time
/// count once (they were made concurrently).
pub fn critical_path(calls: &[Call]) -> usize {
    let mut spans: Vec<(Instant, Instant)> = calls
        .iter()
        .map(|c| (c.started, c.ended.unwrap_or(c.started)))
        .collect();
    spans.sort();
    let mut waves = 0;
    let mut current_end: Option<Instant> = None;
    for (start, end) in spans {
        match current_end {
            Some(wave_end) if start < wave_end => {
                current_end = Some(wave_end.max(end));
            }
            _ => {
                waves += 1;
                current_end = Some(end);
            }
        }
    }
    waves
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        self.total.fetch_add(1, Ordering::SeqCst);
        let mut calls = self.lock();
        calls.push(Call {
            name: format!("{}:{operation}", self.service),
            started: Instant::now(),
            ended: None,
        });
        cfg.interceptor_state()
            .store_put(CallIndex(calls.len() - 1));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(CallIndex(index)) = cfg.load::<CallIndex>().copied() {
            if let Some(call) = self.lock().get_mut(index) {
                call.ended = Some(Instant::now());
            }
        }
        Ok(())
    }
}
