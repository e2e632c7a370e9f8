//! The renderer keeps its objects' lines in chunks of consecutive objects between scrapes: a
//! store large enough for many chunks, changed here and there (objects changed, deleted and
//! added, so chunk boundaries move), must render exactly as a new renderer does.

#[path = "../benches/support/mod.rs"]
mod support;

use stallwatch::{
    expose::{Format, Renderer},
    ingest::{
        decode::{Plan, decode_line},
        wire::WatchLine,
    },
};
use support::{event, filled_store};

fn clock() -> f64 {
    1_704_070_000.0
}

/// `event(i)` with a new resourceVersion and, when `pending`, another phase.
fn changed(i: usize, pending: bool) -> String {
    let e = event(i).replace(&format!(r#""resourceVersion":"{}""#, 1000 + i), r#""resourceVersion":"99999""#);
    if pending { e.replace(r#""phase":"Running""#, r#""phase":"Pending""#) } else { e }
}

#[test]
fn a_kept_renderer_of_many_chunks_writes_what_a_fresh_one_does() {
    let n = 3000;
    let store = filled_store(n);
    let w = store.watches()[0].clone();
    let kept = Renderer::store_only(store.clone(), Default::default(), clock);
    let compare = |step: &str| {
        let fresh = Renderer::store_only(store.clone(), Default::default(), clock);
        let want = fresh.render(Format::Text004).unwrap();
        assert!(want.len() > n * 1000, "{step}: {} bytes", want.len());
        let x = kept.exposition(Format::Text004).unwrap();
        assert_eq!(std::str::from_utf8(&x.plain).unwrap(), want, "{step}");
    };
    compare("first render");
    compare("unchanged");
    let apply = |lines: Vec<String>| {
        w.write(|s| {
            for line in &lines {
                match decode_line(line, Plan::new(w.subs.kind, &w.subs.targets)).unwrap() {
                    WatchLine::Added(o) | WatchLine::Modified(o) => {
                        s.apply(&w.subs, &o, clock());
                    }
                    WatchLine::Deleted(o) => {
                        s.delete(&o);
                    }
                    _ => unreachable!(),
                }
            }
        })
    };
    apply((0..n).step_by(97).map(|i| changed(i, i % 2 == 0)).collect());
    compare("after changes");
    apply((5..n).step_by(131).map(|i| event(i).replacen("MODIFIED", "DELETED", 1)).collect());
    compare("after deletes");
    apply((n..n + 40).map(event).collect());
    compare("after adds");
    apply((0..n).step_by(3).map(|i| changed(i, true)).collect());
    compare("after many changes");
}
