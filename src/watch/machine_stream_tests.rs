//! The streamed initial list (WatchList) in the watch state machine, and its fallback to
//! paged lists, driven by scripted events (no IO).

use super::{
    tests::{RESYNC, backoff, fail, page, watch_rv},
    *,
};
use crate::watch::backoff::Rng;

/// A machine that streams its lists while the server supports it (the default).
fn streaming() -> Machine {
    Machine::new(RESYNC, Backoff::new(Rng::with_seed(3)))
}

#[test]
fn start_streams_the_list_and_goes_on_watching_on_the_same_connection() {
    let t0 = Instant::now();
    let mut m = streaming();
    m.step(Event::Discovered, t0);
    assert_eq!(m.state, State::Stream { cause: RelistCause::Start });
    // Opened, initial ADDED events: not synced yet, nothing recorded.
    assert!(m.step(Event::WatchOpened, t0).is_empty());
    assert!(m.step(Event::Progress { rv: "3".into() }, t0).is_empty());
    assert_eq!(m.state, State::Stream { cause: RelistCause::Start });
    let a = m.step(Event::InitialEventsEnd { rv: "7".into() }, t0);
    assert_eq!(a, vec![Action::Listed { cause: RelistCause::Start, drift: false }, Action::Synced]);
    match &m.state {
        State::Watch { rv, resync_at } => {
            assert_eq!(rv, "7");
            let d = resync_at.duration_since(t0);
            assert!(d >= RESYNC.mul_f64(0.9) && d <= RESYNC.mul_f64(1.1), "{d:?}");
        }
        s => panic!("{s:?}"),
    }
    // Later events advance the rv; the periodic drift check is still an exact LIST.
    m.step(Event::Progress { rv: "9".into() }, t0);
    m.step(Event::ResyncDue, t0);
    assert_eq!(m.state, State::Resync { rv: "9".into(), token: None });
    assert!(m.streams());
}

#[test]
fn gone_relists_by_stream_while_the_server_supports_it() {
    let t0 = Instant::now();
    let mut m = streaming();
    m.step(Event::Discovered, t0);
    m.step(Event::InitialEventsEnd { rv: "7".into() }, t0);
    let a = m.step(fail(ErrorCause::Gone, 410), t0);
    assert_eq!(a, vec![Action::Count(ErrorCause::Gone)]);
    assert_eq!(m.state, State::Stream { cause: RelistCause::Gone });
    let a = m.step(Event::InitialEventsEnd { rv: "20".into() }, t0);
    assert_eq!(a, vec![Action::Listed { cause: RelistCause::Gone, drift: false }, Action::Synced]);
    assert_eq!(watch_rv(&m), "20");
    // 410 on the exact re-list too.
    m.step(Event::ResyncDue, t0);
    m.step(fail(ErrorCause::Gone, 410), t0);
    assert_eq!(m.state, State::Stream { cause: RelistCause::Gone });
}

#[test]
fn a_rejected_or_ignored_stream_falls_back_to_paged_lists_for_good() {
    let unsupported = [
        fail(ErrorCause::Other, 422),
        fail(ErrorCause::Other, 400),
        fail(ErrorCause::Forbidden, 403),
        Event::StreamUnsupported,
        Event::Closed { lasted: Duration::from_secs(200), delivered: true },
        Event::Stalled { after: Duration::from_secs(90) },
    ];
    for ev in unsupported {
        let t0 = Instant::now();
        let mut m = streaming();
        m.step(Event::Discovered, t0);
        m.step(Event::WatchOpened, t0);
        let what = format!("{ev:?}");
        assert!(m.step(ev, t0).is_empty(), "{what}: a fallback is no failure");
        assert_eq!(m.state, State::List { cause: RelistCause::Start, token: None }, "{what}");
        assert!(!m.streams(), "{what}");
        m.step(page("5", None), t0);
        // A later 410 lists page by page as well.
        m.step(fail(ErrorCause::Gone, 410), t0);
        assert_eq!(m.state, State::List { cause: RelistCause::Gone, token: None }, "{what}");
    }
}

#[test]
fn transient_stream_failures_back_off_and_stream_again() {
    for (cause, code) in
        [(ErrorCause::Throttled, 429), (ErrorCause::Unavailable, 503), (ErrorCause::Connect, 0)]
    {
        let t0 = Instant::now();
        let mut m = streaming();
        m.step(Event::Discovered, t0);
        let a = m.step(fail(cause, code), t0);
        assert!(matches!(&a[..], [Action::Fail(f)] if f.code == code), "{a:?}");
        let (_, next) = backoff(&m, t0);
        assert_eq!(next, State::Stream { cause: RelistCause::Start });
        assert!(m.streams());
    }
    // 404: the kind went away; rediscover, keep streaming.
    let t0 = Instant::now();
    let mut m = streaming();
    m.step(Event::Discovered, t0);
    m.step(fail(ErrorCause::NotFound, 404), t0);
    assert_eq!(backoff(&m, t0).1, State::Discover { then: RelistCause::Start });
    // 410 at no resourceVersion (not expected): one paged list, streaming stays on.
    let mut m = streaming();
    m.step(Event::Discovered, t0);
    assert_eq!(m.step(fail(ErrorCause::Gone, 410), t0), vec![Action::Count(ErrorCause::Gone)]);
    assert_eq!(m.state, State::List { cause: RelistCause::Start, token: None });
    assert!(m.streams());
}
