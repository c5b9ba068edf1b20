//! A one-way hand-over of items from one thread to another, in chunks, in order: what a run's helper
//! threads use (the workload generated ahead, streamed records summarised behind). Chunks amortise
//! the synchronisation over thousands of items; a bounded number in flight bounds the memory and how
//! far one side runs ahead; emptied chunks go back for reuse, so no chunk is allocated per hand-over.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

/// Items per chunk after the first.
const CHUNK: usize = 2048;
/// Full chunks sent and not yet taken.
const IN_FLIGHT: usize = 3;

/// A hand-over whose first chunk holds `first_chunk` items (small when the other side should start
/// at once) and every later one `CHUNK`.
pub fn pipe<T>(first_chunk: usize) -> (Feeder<T>, Drain<T>) {
    let (tx, rx) = sync_channel(IN_FLIGHT);
    let (back_tx, back) = channel();
    let size = first_chunk.clamp(1, CHUNK);
    (
        Feeder { tx, back, chunk: Vec::with_capacity(size), size },
        Drain { rx, back: back_tx, chunk: Vec::new(), pos: 0 },
    )
}

/// The sending side. Dropping it sends what is left and closes the hand-over.
pub struct Feeder<T> {
    tx: SyncSender<Vec<T>>,
    back: Receiver<Vec<T>>,
    chunk: Vec<T>,
    size: usize,
}

impl<T> Feeder<T> {
    /// Adds an item (sending the chunk when full); false once the other side has gone.
    pub fn push(&mut self, x: T) -> bool {
        self.chunk.push(x);
        self.chunk.len() < self.size || self.flush()
    }

    /// Sends the items added so far; false once the other side has gone.
    fn flush(&mut self) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        let next = self.back.try_recv().unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.chunk, next);
        self.size = CHUNK;
        self.tx.send(full).is_ok()
    }
}

impl<T> Drop for Feeder<T> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The receiving side. Dropping it makes the feeder's next send fail, so a feeder blocked on a full
/// hand-over is released.
pub struct Drain<T> {
    rx: Receiver<Vec<T>>,
    back: Sender<Vec<T>>,
    chunk: Vec<T>,
    pos: usize,
}

impl<T: Clone> Drain<T> {
    /// The next item, without taking it; `None` once the feeder is gone and every item taken.
    pub fn peek(&mut self) -> Option<&T> {
        while self.pos == self.chunk.len() {
            let mut used = std::mem::take(&mut self.chunk);
            self.pos = 0;
            used.clear();
            // The feeder may be gone: nothing to recycle then.
            let _ = self.back.send(used);
            self.chunk = self.rx.recv().ok()?;
        }
        self.chunk.get(self.pos)
    }

    /// Takes the next item.
    pub fn next_item(&mut self) -> Option<T> {
        let x = self.peek()?.clone();
        self.pos += 1;
        Some(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item arrives once, in order, across chunk boundaries and a partial last chunk.
    #[test]
    fn items_arrive_in_order_and_the_last_partial_chunk_on_drop() {
        let (mut feeder, mut drain) = pipe::<u32>(5);
        let got = std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..10_000 {
                    assert!(feeder.push(i));
                }
            });
            std::iter::from_fn(|| drain.next_item()).collect::<Vec<_>>()
        });
        assert_eq!(got, (0..10_000).collect::<Vec<_>>());
    }

    /// A feeder blocked on a full hand-over is released when the drain goes.
    #[test]
    fn a_dropped_drain_releases_the_feeder() {
        let (mut feeder, mut drain) = pipe::<u32>(1);
        std::thread::scope(|s| {
            let h = s.spawn(move || (0..1_000_000).take_while(|&i| feeder.push(i)).count());
            assert_eq!(drain.next_item(), Some(0));
            drop(drain);
            assert!(h.join().unwrap() < 1_000_000);
        });
    }
}
