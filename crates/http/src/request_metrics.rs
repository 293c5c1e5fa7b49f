//! Request counts and latencies by route template, method and status, with the metric handles
//! kept once made: the `metrics` macros build a key (name and labels, allocated) and look it up
//! in the registry on every call, which cost more than the handler of `/healthz`. The label
//! sets are bounded: routes are the router's templates (or `unmatched`), methods the standard
//! ones (or `other`), statuses the three-digit codes.

use metrics::{Counter, Histogram};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

#[derive(Default)]
struct Route {
    duration: HashMap<&'static str, Histogram>,
    requests: HashMap<(&'static str, u16), Counter>,
}

fn routes() -> &'static Mutex<HashMap<String, Route>> {
    static ROUTES: OnceLock<Mutex<HashMap<String, Route>>> = OnceLock::new();
    ROUTES.get_or_init(Mutex::default)
}

/// Counts one answered request and records how long it took.
pub fn record(route: &str, method: &'static str, status: u16, took: Duration) {
    let (counter, histogram) = {
        let mut routes = routes()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !routes.contains_key(route) {
            // Handles made before the recorder is installed would count nowhere, for ever.
            crate::ops::metrics_handle();
            routes.insert(route.to_string(), Route::default());
        }
        let Some(r) = routes.get_mut(route) else {
            return;
        };
        let counter = r
            .requests
            .entry((method, status))
            .or_insert_with(|| {
                metrics::counter!("http_requests_total", "method" => method, "route" => route.to_string(), "status" => status.to_string())
            })
            .clone();
        let histogram = r
            .duration
            .entry(method)
            .or_insert_with(|| {
                metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route.to_string())
            })
            .clone();
        (counter, histogram)
    };
    counter.increment(1);
    histogram.record(took.as_secs_f64());
}
