//! Counting the AWS calls a function makes: an SDK interceptor, so the count covers
//! every operation the real clients send (the test of the per-launch call budget, and
//! a figure for the logs).

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Counts operations per service; clone it into each client's config.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    total: Arc<AtomicUsize>,
    names: Arc<Mutex<Vec<String>>>,
    service: &'static str,
}

impl CallCounter {
    /// A counter for calls of `service` (e.g. "dynamodb").
    pub fn for_service(&self, service: &'static str) -> Self {
        Self {
            total: self.total.clone(),
            names: self.names.clone(),
            service,
        }
    }

    /// Calls counted so far, across services.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    /// The calls counted so far, as `service:Operation`, then clears the list and count.
    pub fn take(&self) -> Vec<String> {
        self.total.store(0, Ordering::SeqCst);
        std::mem::take(&mut *self.names.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        self.total.fetch_add(1, Ordering::SeqCst);
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{}:{operation}", self.service));
        Ok(())
    }
}
