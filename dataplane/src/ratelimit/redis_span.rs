//! The span of a global rate-limit decision's Redis round trip, named and
//! attributed by the database client conventions (`db.system.name`,
//! `db.operation.name`), as a child of the request's server span.

use crate::telemetry::SpanEnd;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use tokio::time::error::Elapsed;

/// The script call's operation: `Script::invoke_async` sends `EVALSHA`
/// (and loads the script once when Redis does not know it).
const OPERATION: &str = "EVALSHA";

/// How a round trip for `keys` limits that ended with `result` is
/// recorded.
pub(super) fn end<T>(
    result: &Result<Result<T, ::redis::RedisError>, Elapsed>,
    keys: usize,
) -> SpanEnd {
    let error = match result {
        Ok(Ok(_)) => None,
        Ok(Err(_)) => Some("redis-error"),
        Err(_) => Some("timeout"),
    };
    let attributes = vec![
        KeyValue::new("db.system.name", "redis"),
        KeyValue::new("db.operation.name", OPERATION),
        KeyValue::new("tollgate.call", "rate-limit"),
        KeyValue::new("tollgate.ratelimit.keys", keys as i64),
    ];
    SpanEnd {
        name: OPERATION.to_string(),
        kind: SpanKind::Client,
        attributes,
        error: error.map(str::to_string),
    }
}
