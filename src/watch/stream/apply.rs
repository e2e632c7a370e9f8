//! The watch's events into the store: a watch body read as JSON lines or protobuf frames,
//! each event decoded and applied (or reconciled, during a streamed list), and the machine's
//! actions executed.

use futures::StreamExt;

use super::Io;
use crate::{
    clock::now,
    ingest::{
        decode::decode_line,
        proto,
        wire::{RawObject, WatchLine},
    },
    model::text,
    store::ErrorCause,
    watch::{
        failure::{Failure, cause_of_code, fail},
        machine::{Action, Event},
    },
};

/// One unit of a watch stream: a JSON line or a protobuf frame.
pub(super) enum Frame {
    Json(String),
    Proto(Vec<u8>),
}

/// A watch response's body, read as the `Content-Type` says: JSON lines or protobuf frames.
pub(super) enum Frames<R: futures::AsyncBufRead + Unpin> {
    Json(futures::io::Lines<R>),
    Proto(proto::FrameReader<R>),
}

impl<R: futures::AsyncBufRead + Unpin> Frames<R> {
    pub(super) async fn next(&mut self) -> Option<std::io::Result<Frame>> {
        match self {
            Frames::Json(lines) => lines.next().await.map(|l| l.map(Frame::Json)),
            Frames::Proto(frames) => frames.next().await.map(|f| f.map(Frame::Proto)),
        }
    }
}

impl Io {
    /// Applies one watch line or frame; returns the event it makes for the machine (the
    /// resourceVersion it carries), or the failure an ERROR event reports. While the `initial`
    /// events of a streamed list arrive, objects are reconciled as list items, not counted as
    /// events. A protobuf frame that cannot be read ends the watch (it is reopened from the
    /// last resourceVersion, in JSON); a JSON line that cannot be read is skipped.
    pub(super) fn apply_frame(&mut self, frame: &Frame, initial: bool) -> Result<Option<Event>, Failure> {
        let line = match frame {
            Frame::Json(line) => decode_line(line, self.plan).map_err(|e| e.to_string()),
            Frame::Proto(bytes) => match proto::decode_event(bytes) {
                Ok(l) => Ok(l),
                Err(e) => return Err(self.protobuf_failed("a watch event", &e)),
            },
        };
        self.apply_line(line, initial)
    }

    fn apply_line(
        &mut self,
        line: Result<WatchLine<RawObject>, String>,
        initial: bool,
    ) -> Result<Option<Event>, Failure> {
        let t = now();
        let targets = &self.watch.subs;
        let progress = |rv: &str| Ok(Some(Event::Progress { rv: rv.to_string() }));
        if let Ok(WatchLine::Added(o) | WatchLine::Modified(o) | WatchLine::Deleted(o)) = &line
            && self.shard.is_some()
        {
            let mine = self.owns(o);
            self.watch.write(|s| {
                s.health.shard.decoded += 1;
                s.health.shard.dropped += u64::from(!mine);
            });
            if !mine {
                return progress(&o.meta.resource_version);
            }
        }
        match line {
            Ok(WatchLine::Added(o)) if initial => {
                let mut r = self.reconcile.take().unwrap_or_default();
                self.watch.write(|s| s.reconcile_page(targets, std::slice::from_ref(&o), t, &mut r));
                self.reconcile = Some(r);
                progress(&o.meta.resource_version)
            }
            Ok(WatchLine::Bookmark(b)) if initial && b.metadata.initial_events_end() => {
                let r = self.reconcile.take().unwrap_or_default();
                self.listed = self.watch.write(|s| s.finish_reconcile(r));
                Ok(Some(Event::InitialEventsEnd { rv: b.metadata.resource_version }))
            }
            Ok(WatchLine::Bookmark(_)) if initial => Ok(Some(Event::StreamUnsupported)),
            Ok(WatchLine::Added(o) | WatchLine::Modified(o)) => {
                self.watch.write(|s| {
                    if s.apply(targets, &o, t) {
                        s.health.events.added += 1;
                    } else {
                        s.health.events.modified += 1;
                    }
                    s.health.last_event = Some(t);
                });
                progress(&o.meta.resource_version)
            }
            Ok(WatchLine::Deleted(o)) => {
                self.watch.write(|s| {
                    s.delete_at(&o, t);
                    s.health.events.deleted += 1;
                    s.health.last_event = Some(t);
                });
                progress(&o.meta.resource_version)
            }
            Ok(WatchLine::Bookmark(b)) => progress(&b.metadata.resource_version),
            Ok(WatchLine::Error(status)) => Err(Failure {
                cause: cause_of_code(status.code),
                code: status.code,
                message: format!("watch error {}: {} {}", status.code, status.reason, status.message),
                retry_after: None,
            }),
            // A malformed object must not stop the watch; the next re-list repairs the store
            // and counts the object as drift.
            Err(e) => {
                tracing::warn!(resource = %self.watch.key.gvk.label(), error = %text::display(&e), "undecodable watch event skipped");
                self.watch.write(|s| *s.health.errors.entry(ErrorCause::Decode).or_default() += 1);
                Ok(None)
            }
        }
    }

    /// Executes the machine's actions on the store.
    pub(in crate::watch) fn execute(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Count(cause) => self.watch.write(|s| *s.health.errors.entry(cause).or_default() += 1),
                Action::Fail(f) => fail(&self.watch, &f, false),
                Action::Clear => self.watch.write(|s| s.clear_objects()),
                Action::Synced => self.watch.write(|s| {
                    s.health.synced = true;
                    s.health.last_error = None;
                }),
                Action::Listed { cause, drift } => {
                    let diff = std::mem::take(&mut self.listed);
                    let t = now();
                    self.watch.write(|s| {
                        if drift {
                            s.record_drift(diff);
                        }
                        *s.health.relists.entry(cause).or_default() += 1;
                        s.health.last_list = Some(t);
                        s.health.attempted = true;
                    });
                    if drift && diff.total() > 0 {
                        tracing::warn!(resource = %self.watch.key.gvk.label(), namespace = %self.watch.key.namespace,
                            added = diff.added, modified = diff.modified, deleted = diff.deleted,
                            "re-list found changes the watch never delivered (lost events); store corrected");
                    }
                }
            }
        }
    }
}
