//! A short-lived cache of validated DNS answers for the delivery clients.
//!
//! Each one-shot delivery opens a new connection, and each new connection to a named server
//! resolved its name again: a blocking `getaddrinfo` on tokio's blocking pool, and a query to
//! the system's resolver, for every delivery of every post to every server that gets one at a
//! time (most of a fan-out). An account posting a few times an hour sends to the same servers
//! each time. Answers are kept for `TTL`, after they passed `ValidatingDnsResolver`'s check
//! (no private, loopback or link-local addresses outside dev mode), so a name that later points
//! somewhere private is refused when it is next looked up; failed lookups are not kept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long an answer is used: short, as the system resolver does not say the record's own TTL
/// (many servers sit behind CDNs with TTLs of a few minutes).
const TTL: Duration = Duration::from_secs(60);

/// Names kept before the cache is emptied and starts over; simple and bounded.
const LIMIT: usize = 20_000;

type Answers = HashMap<String, (Instant, Arc<[SocketAddr]>)>;

/// `inner` (the validating resolver) behind a cache of its answers.
pub struct CachingResolver<R> {
    inner: R,
    answers: Arc<Mutex<Answers>>,
}

impl<R> CachingResolver<R> {
    pub fn new(inner: R) -> Self {
        CachingResolver { inner, answers: Arc::default() }
    }
}

impl<R: Resolve> Resolve for CachingResolver<R> {
    fn resolve(&self, name: Name) -> Resolving {
        let key = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let now = Instant::now();
        let kept = {
            let answers = self.answers.lock().expect("dns cache lock");
            answers
                .get(&key)
                .filter(|(at, _)| now.duration_since(*at) < TTL)
                .map(|(_, a)| a.clone())
        };
        if let Some(addrs) = kept {
            return Box::pin(async move { Ok(owned(addrs)) });
        }
        let lookup = self.inner.resolve(name);
        let answers = self.answers.clone();
        Box::pin(async move {
            let addrs: Arc<[SocketAddr]> = lookup.await?.collect();
            {
                let mut answers = answers.lock().expect("dns cache lock");
                if answers.len() >= LIMIT {
                    answers.clear();
                }
                answers.insert(key, (Instant::now(), addrs.clone()));
            }
            Ok(owned(addrs))
        })
    }
}

/// The addresses as the iterator reqwest takes, holding the shared list.
fn owned(addrs: Arc<[SocketAddr]>) -> Addrs {
    Box::new((0..addrs.len()).map(move |i| addrs[i]))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use activitypub_federation::resolver::ValidatingDnsResolver;

    use super::*;

    /// The real validating resolver (the system's resolver, here `/etc/hosts`), counting the
    /// lookups that reach it.
    struct Counted(ValidatingDnsResolver, Arc<AtomicUsize>);

    impl Resolve for Counted {
        fn resolve(&self, name: Name) -> Resolving {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.resolve(name)
        }
    }

    async fn lookup(resolver: &impl Resolve, name: &str) -> Result<Vec<SocketAddr>, String> {
        let name = Name::from_str(name).expect("a name");
        match resolver.resolve(name).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn an_answer_is_reused_and_a_refusal_is_not_kept() {
        let calls = Arc::new(AtomicUsize::new(0));
        // Dev mode: loopback allowed.
        let open =
            CachingResolver::new(Counted(ValidatingDnsResolver::new(vec![], false), calls.clone()));
        let first = lookup(&open, "localhost").await.expect("localhost resolves");
        assert!(first.iter().all(|a| a.ip().is_loopback()), "{first:?}");
        assert_eq!(
            lookup(&open, "LOCALHOST.").await.expect("cached"),
            first,
            "same name, same answer"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one lookup for both");

        // Outside dev mode a name resolving to loopback is refused, each time it is asked.
        let calls = Arc::new(AtomicUsize::new(0));
        let checked =
            CachingResolver::new(Counted(ValidatingDnsResolver::new(vec![], true), calls.clone()));
        for _ in 0..2 {
            let refused = lookup(&checked, "localhost").await;
            assert!(refused.is_err(), "{refused:?}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "refusals are not kept");
    }
}
