//! Time-ordered 64-bit ids and the clock, in milliseconds since the Unix epoch.
//!
//! Ids are `ms << 16 | sequence`, so sorting by id sorts by creation time, which is what the
//! client API's `max_id`/`min_id` pagination relies on (Mastodon's ids have the same property).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Hands out strictly increasing ids; one per database handle, no process-global state.
#[derive(Debug)]
pub struct IdGen {
    last: AtomicI64,
}

impl Default for IdGen {
    fn default() -> Self {
        // A random start inside the first millisecond makes two processes sharing one
        // PostgreSQL database unlikely to mint the same id in the same millisecond.
        let offset = rand::thread_rng().gen_range(0..1 << 15);
        IdGen { last: AtomicI64::new((now_ms() << 16) | offset) }
    }
}

impl IdGen {
    /// The next id: at least `now << 16`, and greater than every id handed out before.
    pub fn next(&self) -> i64 {
        let floor = now_ms() << 16;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = floor.max(last + 1);
            match self.last.compare_exchange_weak(
                last,
                candidate,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate,
                Err(seen) => last = seen,
            }
        }
    }
}

/// An id for something created at `ms` (imported or remote notes keep their own dates).
pub fn id_at(ms: i64) -> i64 {
    (ms.max(0) << 16) | rand::thread_rng().gen_range(0..1 << 16)
}

/// The creation time encoded in an id.
pub fn ms_of(id: i64) -> i64 {
    id >> 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_increase_and_encode_time() {
        let ids = IdGen::default();
        let before = now_ms();
        let a = ids.next();
        let b = ids.next();
        assert!(b > a);
        assert!(ms_of(a) >= before && ms_of(a) <= now_ms());
        assert_eq!(ms_of(id_at(1_700_000_000_000)), 1_700_000_000_000);
    }
}
