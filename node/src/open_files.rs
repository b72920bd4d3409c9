//! The process's limit on open files, and how many delivery sockets fit under it.
//!
//! Every delivery in flight holds a socket. The usual soft limit, 1,024, is a leftover of
//! `select(2)`; service managers set a far higher hard limit and leave raising the soft one to
//! programs that need it (systemd's own advice; Go programs and nginx do the same).

/// Descriptors kept for everything but delivery sockets: inbound connections, the database and
/// its WAL, media being written.
const RESERVED: u64 = 512;
/// Fewest delivery requests in flight whatever the limit (a node must still deliver).
const FLOOR: usize = 16;

/// Raises the soft limit on open files to the hard limit; returns the limit now in force, or
/// none if it could not be read.
pub fn raise_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

/// How many of `wanted` delivery requests in flight fit under `limit` open files.
pub fn fit_in_flight(wanted: usize, limit: u64) -> usize {
    let room = usize::try_from(limit.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    wanted.min(room.max(FLOOR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_get_what_is_left_after_the_reserve() {
        assert_eq!(fit_in_flight(1024, 1_048_576), 1024);
        assert_eq!(fit_in_flight(1024, 1024), 512, "the common soft limit");
        assert_eq!(fit_in_flight(1024, 1536), 1024);
        assert_eq!(fit_in_flight(1024, 256), FLOOR, "a tiny limit still delivers");
    }

    #[test]
    fn the_limit_can_be_raised_to_the_hard_limit() {
        let limit = raise_limit().expect("the limit is readable on Linux");
        let (soft, hard) = rlimit::Resource::NOFILE.get().expect("readable");
        assert_eq!(limit, soft);
        assert_eq!(soft, hard, "soft raised to the hard limit");
    }
}
