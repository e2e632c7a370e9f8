//! Every transition of the watch state machine, driven by scripted events (no IO).

use super::*;
use crate::watch::backoff::Rng;

pub(super) const RESYNC: Duration = Duration::from_secs(600);

/// A machine that lists page by page (the server does not stream lists).
fn machine() -> Machine {
    Machine::paged(RESYNC, Backoff::new(Rng::with_seed(3)))
}

pub(super) fn fail(cause: ErrorCause, code: u16) -> Event {
    Event::Failed(Failure { cause, code, message: format!("{code}"), retry_after: None })
}

pub(super) fn page(rv: &str, token: Option<&str>) -> Event {
    Event::Page { rv: rv.into(), token: token.map(str::to_string) }
}

/// A machine watching from `rv`, reached through discovery and a one-page start list.
fn watching(rv: &str, t0: Instant) -> Machine {
    let mut m = machine();
    assert!(m.step(Event::Discovered, t0).is_empty());
    assert_eq!(m.state, State::List { cause: RelistCause::Start, token: None });
    let a = m.step(page(rv, None), t0);
    assert_eq!(a, vec![Action::Listed { cause: RelistCause::Start, drift: false }]);
    assert_eq!(m.step(Event::WatchOpened, t0), vec![Action::Synced]);
    m
}

pub(super) fn watch_rv(m: &Machine) -> &str {
    match &m.state {
        State::Watch { rv, .. } => rv,
        s => panic!("not watching: {s:?}"),
    }
}

/// The wait of a Backoff state, and what follows it.
pub(super) fn backoff(m: &Machine, now: Instant) -> (Duration, State) {
    match &m.state {
        State::Backoff { until, next } => (until.saturating_duration_since(now), (**next).clone()),
        s => panic!("not backing off: {s:?}"),
    }
}

#[test]
fn start_lists_page_by_page_then_watches_with_jittered_resync() {
    let t0 = Instant::now();
    let mut m = machine();
    m.step(Event::Discovered, t0);
    assert!(m.step(page("5", Some("tok1")), t0).is_empty());
    assert_eq!(m.state, State::List { cause: RelistCause::Start, token: Some("tok1".into()) });
    m.step(page("9", None), t0);
    match &m.state {
        State::Watch { rv, resync_at } => {
            assert_eq!(rv, "9");
            let d = resync_at.duration_since(t0);
            assert!(d >= RESYNC.mul_f64(0.9) && d <= RESYNC.mul_f64(1.1), "{d:?}");
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn gone_in_the_stream_relists_at_once_and_is_counted() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    m.step(Event::Progress { rv: "12".into() }, t0);
    let a = m.step(fail(ErrorCause::Gone, 410), t0);
    assert_eq!(a, vec![Action::Count(ErrorCause::Gone)]);
    assert_eq!(m.state, State::List { cause: RelistCause::Gone, token: None });
    let a = m.step(page("20", None), t0);
    assert_eq!(a, vec![Action::Listed { cause: RelistCause::Gone, drift: false }]);
    assert_eq!(watch_rv(&m), "20");
}

#[test]
fn gone_on_open_relists_too() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    // The watch ends cleanly and is reopened from 10, which the server answers with 410.
    m.step(Event::Closed { lasted: Duration::from_secs(200), delivered: true }, t0);
    assert_eq!(watch_rv(&m), "10");
    m.step(fail(ErrorCause::Gone, 410), t0);
    assert_eq!(m.state, State::List { cause: RelistCause::Gone, token: None });
}

#[test]
fn gone_on_the_exact_resync_lists_at_the_newest_without_drift() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    m.step(Event::ResyncDue, t0);
    assert_eq!(m.state, State::Resync { rv: "10".into(), token: None });
    let a = m.step(fail(ErrorCause::Gone, 410), t0);
    assert_eq!(a, vec![Action::Count(ErrorCause::Gone)]);
    assert_eq!(m.state, State::List { cause: RelistCause::Gone, token: None });
    let a = m.step(page("30", None), t0);
    assert_eq!(a, vec![Action::Listed { cause: RelistCause::Gone, drift: false }]);
}

#[test]
fn exact_resync_counts_drift_and_resumes_at_its_rv() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    m.step(Event::Progress { rv: "15".into() }, t0);
    m.step(Event::ResyncDue, t0);
    assert_eq!(m.state, State::Resync { rv: "15".into(), token: None });
    m.step(page("15", Some("t")), t0);
    assert_eq!(m.state, State::Resync { rv: "15".into(), token: Some("t".into()) });
    let a = m.step(page("15", None), t0);
    assert_eq!(a, vec![Action::Listed { cause: RelistCause::Periodic, drift: true }]);
    assert_eq!(watch_rv(&m), "15");
}

#[test]
fn continue_token_expiry_mid_list_restarts_the_list() {
    let t0 = Instant::now();
    let mut m = machine();
    m.step(Event::Discovered, t0);
    m.step(page("5", Some("tok")), t0);
    let a = m.step(fail(ErrorCause::Gone, 410), t0);
    assert_eq!(a, vec![Action::Count(ErrorCause::Gone)]);
    assert_eq!(m.state, State::List { cause: RelistCause::Start, token: None });
}

#[test]
fn non_gone_errors_resume_from_the_last_rv_without_a_list() {
    for (cause, code) in [(ErrorCause::Connect, 0), (ErrorCause::Timeout, 0), (ErrorCause::Unavailable, 500)]
    {
        let t0 = Instant::now();
        let mut m = watching("10", t0);
        m.step(Event::Progress { rv: "11".into() }, t0);
        let a = m.step(fail(cause, code), t0);
        assert!(matches!(&a[..], [Action::Fail(f)] if f.cause == cause), "{a:?}");
        let (wait, next) = backoff(&m, t0);
        assert!(wait >= Duration::from_millis(800) && wait < Duration::from_millis(1600), "{wait:?}");
        assert!(matches!(&next, State::Watch { rv, .. } if rv == "11"), "{next:?}");
        m.step(Event::Woke, t0 + wait);
        assert_eq!(watch_rv(&m), "11");
    }
}

#[test]
fn clean_close_resumes_at_once_but_an_instant_empty_close_backs_off() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    let a = m.step(Event::Closed { lasted: Duration::from_secs(200), delivered: false }, t0);
    assert!(a.is_empty());
    assert_eq!(watch_rv(&m), "10");
    m.step(Event::Closed { lasted: Duration::from_millis(5), delivered: false }, t0);
    let (_, next) = backoff(&m, t0);
    assert!(matches!(next, State::Watch { .. }));
}

#[test]
fn throttled_waits_at_least_retry_after() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    let f = Failure {
        cause: ErrorCause::Throttled,
        code: 429,
        message: "TooManyRequests".into(),
        retry_after: Some(Duration::from_secs(3)),
    };
    let a = m.step(Event::Failed(f.clone()), t0);
    assert_eq!(a, vec![Action::Fail(f)]);
    let (wait, _) = backoff(&m, t0);
    assert!(wait >= Duration::from_secs(3), "{wait:?}");
}

#[test]
fn unavailable_on_a_list_retries_the_list_from_the_first_page() {
    let t0 = Instant::now();
    let mut m = machine();
    m.step(Event::Discovered, t0);
    m.step(page("5", Some("tok")), t0);
    let a = m.step(fail(ErrorCause::Unavailable, 503), t0);
    assert!(matches!(&a[..], [Action::Fail(f)] if f.code == 503));
    let (_, next) = backoff(&m, t0);
    assert_eq!(next, State::List { cause: RelistCause::Start, token: None });
}

#[test]
fn list_ok_but_watch_forbidden_backs_off_growing_and_never_relists() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    let mut now = t0;
    let mut waits = vec![];
    for _ in 0..8 {
        m.step(fail(ErrorCause::Forbidden, 403), now);
        let (wait, next) = backoff(&m, now);
        assert!(matches!(next, State::Watch { .. }), "a 403 on watch must not re-list: {next:?}");
        waits.push(wait);
        now += wait;
        m.step(Event::Woke, now);
    }
    for w in waits.windows(2).take(5) {
        assert!(w[1] > w[0], "the backoff must grow: {waits:?}");
    }
    assert!(waits[5] >= Duration::from_millis(25_600), "{waits:?}");
    assert!(waits[7] >= Duration::from_secs(30), "{waits:?}");
}

#[test]
fn backoff_resets_only_after_two_minutes_of_health() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    let mut now = t0;
    for _ in 0..4 {
        m.step(fail(ErrorCause::Connect, 0), now);
        let (wait, _) = backoff(&m, now);
        now += wait;
        m.step(Event::Woke, now);
    }
    // Open briefly: not healthy long enough, the backoff keeps growing.
    m.step(Event::WatchOpened, now);
    m.step(fail(ErrorCause::Connect, 0), now + Duration::from_secs(10));
    let (wait, _) = backoff(&m, now + Duration::from_secs(10));
    assert!(wait >= Duration::from_millis(12_800), "{wait:?}");
    now += Duration::from_secs(10) + wait;
    m.step(Event::Woke, now);
    // Open for over two minutes: the next failure starts from 800 ms again.
    m.step(Event::WatchOpened, now);
    let later = now + Duration::from_secs(121);
    m.step(fail(ErrorCause::Connect, 0), later);
    let (wait, _) = backoff(&m, later);
    assert!(wait < Duration::from_millis(1600), "{wait:?}");
}

#[test]
fn empty_rv_in_an_event_keeps_the_last_one() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    m.step(Event::Progress { rv: String::new() }, t0);
    assert_eq!(watch_rv(&m), "10");
}

#[test]
fn bookmark_advances_the_rv() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    m.step(Event::Progress { rv: "99".into() }, t0);
    assert_eq!(watch_rv(&m), "99");
    m.step(Event::ResyncDue, t0);
    assert_eq!(m.state, State::Resync { rv: "99".into(), token: None });
}

#[test]
fn a_silent_watch_is_probed_and_only_a_failed_probe_counts_stalled() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    // Quiet but alive: the probe opens, nothing is counted.
    assert!(m.step(Event::Stalled { after: Duration::from_secs(90) }, t0).is_empty());
    assert_eq!(watch_rv(&m), "10");
    assert!(m.probing());
    assert_eq!(m.step(Event::WatchOpened, t0), vec![Action::Synced]);
    assert!(!m.probing());
    // Dead: the probe times out, counted stalled and by its own cause, resumed after a backoff.
    m.step(Event::Stalled { after: Duration::from_secs(90) }, t0);
    let a = m.step(fail(ErrorCause::Timeout, 0), t0);
    assert!(
        matches!(&a[..], [Action::Fail(s), Action::Fail(t)] if s.cause == ErrorCause::Stalled && t.cause == ErrorCause::Timeout),
        "{a:?}"
    );
    let (_, next) = backoff(&m, t0);
    assert!(matches!(next, State::Watch { rv, .. } if rv == "10"));
    assert!(!m.probing());
}

#[test]
fn not_found_keeps_objects_through_the_grace_period() {
    let t0 = Instant::now();
    let mut m = watching("10", t0);
    let a = m.step(fail(ErrorCause::NotFound, 404), t0);
    assert!(!a.contains(&Action::Clear));
    let (_, next) = backoff(&m, t0);
    assert_eq!(next, State::Discover { then: RelistCause::Error });
    let mut now = t0;
    let mut cleared = false;
    while now < t0 + NOT_FOUND_GRACE + Duration::from_secs(61) {
        let (wait, _) = backoff(&m, now);
        now += wait;
        m.step(Event::Woke, now);
        let a = m.step(fail(ErrorCause::NotFound, 404), now);
        let past_grace = now.duration_since(t0) >= NOT_FOUND_GRACE;
        assert_eq!(a.contains(&Action::Clear), past_grace, "at {:?}", now.duration_since(t0));
        cleared |= past_grace;
    }
    assert!(cleared);
    // The kind is back: discovery, a list, and the 404 clock is reset.
    let (wait, _) = backoff(&m, now);
    m.step(Event::Woke, now + wait);
    m.step(Event::Discovered, now + wait);
    assert_eq!(m.state, State::List { cause: RelistCause::Error, token: None });
    m.step(page("50", None), now + wait);
    m.step(fail(ErrorCause::NotFound, 404), now + wait);
    assert!(!m.step(Event::Woke, now + wait * 2).contains(&Action::Clear));
}

#[test]
fn events_that_do_not_fit_the_state_change_nothing() {
    let t0 = Instant::now();
    let mut m = machine();
    assert!(m.step(Event::WatchOpened, t0).is_empty());
    assert_eq!(m.state, State::Discover { then: RelistCause::Start });
}
