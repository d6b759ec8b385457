//! The trace's events held compactly, for a page that keeps a whole run in memory: every string
//! (labels, table names, keys, values, narration) is interned once and named by a `u32`, ids and
//! versions are `u32`, and the events live in chunks of [`CHUNK_EVENTS`] fixed-size records, so
//! the store grows a chunk at a time instead of doubling (and copying) one huge vector. An event
//! is decoded back to the [`TraceEvent`] it was, exactly, when asked for; one whose numbers do
//! not fit (an id past `u32`, a latency over 71 minutes) or that is rare (faults, the run's end)
//! is kept whole beside the records. Nothing here is serialized: the JSON trace and its hash are
//! made from the decoded events, which equal the ones stored.

use crate::protocol::{
    DropReason, Event, MessageKind, MsgId, Observed, OpId, Outcome, ServiceId, TraceEvent,
};
use crate::time::Micros;
use std::collections::BTreeMap;

/// Events per chunk: a chunk is allocated whole (about 128 KiB), so at most one is partly
/// empty.
pub const CHUNK_EVENTS: usize = 4096;

/// An interned string's number in its [`Interner`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StrId(u32);

/// Each distinct string once, named by a number; and each distinct row `(service, table, key)`
/// a read observed, named by a number too. The strings' bytes lie one after another in one
/// buffer, each string found by where it ends (4 bytes a string, where a boxed string took 16
/// and an allocation of its own). A string is looked up in an open-addressing table of numbers
/// (4 bytes a slot, at most three-quarters full) by its 64-bit FNV-1a hash, comparing texts only
/// for the strings met on the way.
#[derive(Clone, Debug, Default)]
pub struct Interner {
    /// Every string's bytes, in the order they were numbered.
    text: String,
    /// Where each string ends in `text`; it starts where the one before ends.
    ends: Vec<u32>,
    /// String numbers by hash, linearly probed; [`NONE`] marks an empty slot. A power of two
    /// long, or empty.
    slots: Vec<u32>,
    rows: Vec<(ServiceId, StrId, StrId)>,
    /// Row numbers by service, then [`row_key`]: a `BTreeMap<u64, u32>` is the tree every
    /// `SlotMap<u64, _>` already has, where a tree keyed by the triple was code of its own.
    row_ids: Vec<BTreeMap<u64, u32>>,
}

/// A row's table and key as one number, its key in its service's map of row numbers.
fn row_key(table: StrId, key: StrId) -> u64 {
    (u64::from(table.0) << 32) | u64::from(key.0)
}

/// `service`'s map of row numbers in `row_ids`, made (with those of the services before it) if
/// new.
fn ids_of(row_ids: &mut Vec<BTreeMap<u64, u32>>, service: ServiceId) -> &mut BTreeMap<u64, u32> {
    let i = usize::from(service.0);
    if row_ids.len() <= i {
        row_ids.resize_with(i + 1, BTreeMap::new);
    }
    &mut row_ids[i]
}

/// The 64-bit FNV-1a hash of `text`.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The slot a hash starts probing at, in a table of `mask + 1` slots.
fn home_slot(hash: u64, mask: usize) -> usize {
    ((hash ^ (hash >> 32)) as usize) & mask
}

impl Interner {
    /// The number of `text`, interning it if it is new; `None` once `u32` numbers (or bytes)
    /// run out.
    pub fn intern(&mut self, text: &str) -> Option<StrId> {
        self.intern_hashed(text, fnv1a(text))
    }

    fn intern_hashed(&mut self, text: &str, hash: u64) -> Option<StrId> {
        if (self.ends.len() + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut slot = home_slot(hash, mask);
        while let Some(&id) = self.slots.get(slot).filter(|id| **id != NONE) {
            if self.get(StrId(id)) == text {
                return Some(StrId(id));
            }
            slot = (slot + 1) & mask;
        }
        let id = small(self.ends.len() as u64)?;
        let end = small((self.text.len() + text.len()) as u64)?;
        self.text.push_str(text);
        self.ends.push(end);
        self.slots[slot] = id;
        Some(StrId(id))
    }

    /// Doubles the table (16 slots at first; after [`Interner::shrink_to_fit`] dropped it, as
    /// many as the strings need) and puts every string back in it.
    fn grow(&mut self) {
        let mut slots = (self.slots.len() * 2).max(16);
        while (self.ends.len() + 1) * 4 > slots * 3 {
            slots *= 2;
        }
        self.slots = vec![NONE; slots];
        let mask = slots - 1;
        for id in 0..self.ends.len() {
            let mut slot = home_slot(fnv1a(self.get(StrId(id as u32))), mask);
            while self.slots[slot] != NONE {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = id as u32;
        }
    }

    /// The number of the row `key` of `service`'s `table`, interning it if it is new.
    fn intern_row(&mut self, service: ServiceId, table: &str, key: &str) -> Option<u32> {
        let (table, key) = (self.intern(table)?, self.intern(key)?);
        if self.row_ids.is_empty() {
            // Dropped by shrink_to_fit (or none yet): numbered again from the rows.
            for (id, &(service, table, key)) in (0..).zip(&self.rows) {
                ids_of(&mut self.row_ids, service).insert(row_key(table, key), id);
            }
        }
        let ids = ids_of(&mut self.row_ids, service);
        if let Some(id) = ids.get(&row_key(table, key)) {
            return Some(*id);
        }
        let id = small(self.rows.len() as u64)?;
        ids.insert(row_key(table, key), id);
        self.rows.push((service, table, key));
        Some(id)
    }

    /// The row numbered `id`: its service, table and key.
    fn row(&self, id: u32) -> (ServiceId, &str, &str) {
        let (service, table, key) = self.rows[id as usize];
        (service, self.get(table), self.get(key))
    }

    /// The string numbered `id`.
    pub fn get(&self, id: StrId) -> &str {
        let i = id.0 as usize;
        let start = i
            .checked_sub(1)
            .map_or(0, |before| self.ends[before] as usize);
        &self.text[start..self.ends[i] as usize]
    }

    /// Gives back the room its vectors kept to grow, and drops the lookup table and the rows'
    /// maps, which only interning reads: interning again builds them anew from the strings and
    /// rows, which keep their numbers.
    fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.slots = Vec::new();
        self.row_ids = Vec::new();
    }

    /// How many distinct strings it holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when it holds no string.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Heap bytes it holds: the strings' bytes, where each ends, the table, and an estimate of
    /// the rows' maps (their entries at two-thirds fill of B-tree nodes).
    pub fn heap_bytes(&self) -> usize {
        let strings = self.text.capacity() + self.ends.capacity() * size_of::<u32>();
        let table = self.slots.capacity() * size_of::<u32>();
        let row_ids: usize = self.row_ids.iter().map(BTreeMap::len).sum();
        let rows = self.rows.capacity() * size_of::<(ServiceId, StrId, StrId)>()
            + self.row_ids.capacity() * size_of::<BTreeMap<u64, u32>>()
            + row_ids * size_of::<(u64, u32)>() * 3 / 2;
        strings + table + rows
    }
}

/// `None` as a compact optional id.
const NONE: u32 = u32::MAX;

/// The top bit of a message's `from` or `to` in its record: it has an operation, a cause.
const HAS: u8 = 0x80;

/// The most tables a store numbers; rows written to others are kept whole.
const MAX_TABLES: usize = 1 << 10;

/// The longest beginning of a value, up to and with its first `:` and the space after it, that
/// is kept once for every value beginning with it.
const PREFIX_MAX_BYTES: usize = 16;

/// What the rows' records name by small numbers: the tables written to and the beginnings that
/// values share.
#[derive(Clone, Debug, Default)]
struct RowParts {
    /// Each service's table that a row was written to, as `service << 32 | the table's string
    /// number`, numbered by its place here (a few per run, so found by a scan). One `u64`, like
    /// a chunk's `sent_both`, so the page compiles no vector type of its own for them.
    tables: Vec<u64>,
    /// The string numbers of values' beginnings — up to and with their first `:` when a space
    /// follows it, with no digit (an outbox's `pending: ` and `sent: ` before the same event) —
    /// numbered from 1 by their place here: at most 255, found by a scan.
    prefixes: Vec<u32>,
}

impl RowParts {
    /// `value` as a prefix's number (0 for none) and the rest, interning the prefix if new.
    fn split_value<'v>(&mut self, strings: &mut Interner, value: &'v str) -> Option<(u8, &'v str)> {
        // A beginning with a digit in it (`#12 started: `) is likely one value's own: only
        // words are kept apart.
        // Bytes are scanned rather than the text searched for `": "`: a searcher for a string
        // costs the page more code than this does.
        let bytes = value.as_bytes();
        let Some((head, rest)) = bytes
            .iter()
            .position(|b| *b == b':')
            .map(|colon| colon + 2)
            .filter(|end| *end <= PREFIX_MAX_BYTES && bytes.get(end - 1) == Some(&b' '))
            .map(|end| value.split_at(end))
            .filter(|(head, _)| !head.bytes().any(|b| b.is_ascii_digit()))
        else {
            return Some((0, value));
        };
        let number = match self
            .prefixes
            .iter()
            .position(|p| strings.get(StrId(*p)) == head)
        {
            Some(number) => number,
            None if self.prefixes.len() < u8::MAX as usize => {
                self.prefixes.push(strings.intern(head)?.0);
                self.prefixes.len() - 1
            }
            None => return Some((0, value)),
        };
        Some((number as u8 + 1, rest))
    }
}

/// One event in its compact form. Every variant fits in 16 bytes (checked by a test): a tag
/// byte, a byte and a `u16` beside it, and three `u32`s. What does not fit lies beside the
/// records: a message's operation and cause when it has both (`Chunk::sent_both`), a row's
/// service and table as the store's table number (`EventStore::tables`), a read's observations
/// (`Chunk::observed`).
#[derive(Copy, Clone, Debug)]
enum Record {
    ServiceUp {
        service: ServiceId,
    },
    ServiceDown {
        service: ServiceId,
    },
    /// A message sent. Services are numbered below 128 (else the event is kept whole): the top
    /// bit of `from` says it serves an operation, that of `to` that it has a cause. `extra` is
    /// the one it has, or with both the index in its chunk's `sent_both` of the two.
    Sent {
        kind: MessageKind,
        from: u8,
        to: u8,
        msg: u32,
        label: StrId,
        extra: u32,
    },
    Delivered {
        msg: u32,
    },
    Duplicated {
        msg: u32,
        copy: u32,
    },
    Dropped {
        msg: u32,
        reason: DropReason,
    },
    /// `table` numbers the service's table in the store's `tables`; the value is the store's
    /// `prefixes[prefix - 1]` (none for 0) followed by `value`.
    RowWritten {
        prefix: u8,
        table: u16,
        key: StrId,
        value: StrId,
        version: u32,
    },
    QueueDepth {
        service: ServiceId,
        queue: StrId,
        depth: u32,
    },
    ServiceLoad {
        service: ServiceId,
        workers: u32,
        busy: u32,
        waiting: u32,
    },
    OpStarted {
        op: u32,
        name: StrId,
        client: ServiceId,
    },
    /// An operation that succeeded.
    OpFinished {
        op: u32,
        latency_us: u32,
        /// Its observations: `observed[first..first + count]` of its chunk.
        observed_first: u32,
        observed_count: u16,
    },
    /// An operation that failed for `reason`, observing nothing (as every failed one does; one
    /// that observed something is kept whole).
    OpFailed {
        op: u32,
        latency_us: u32,
        reason: StrId,
    },
    EventHandled {
        service: ServiceId,
        event_id: StrId,
        published_at_us: [u32; 2],
        applied: bool,
    },
    Narration {
        text: StrId,
    },
    /// Kept whole: `others[index]` of the store.
    Other {
        index: u32,
    },
}

/// One observation of a read, compactly: the row, by its number in the [`Interner`], and the
/// version seen.
#[derive(Copy, Clone, Debug)]
struct CompactObserved {
    row: u32,
    version: u32,
}

/// The times of a chunk's events: as offsets from its first while they fit in `u32` (71
/// minutes) and do not go backwards, as they do in every trace a source makes; else whole.
#[derive(Clone, Debug)]
enum Times {
    Offsets { first: Micros, offsets: Vec<u32> },
    Whole(Vec<Micros>),
}

impl Times {
    fn with_capacity(capacity: usize) -> Times {
        Times::Offsets {
            first: Micros::ZERO,
            offsets: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, at: Micros) {
        match self {
            Times::Offsets { first, offsets } => {
                if offsets.is_empty() {
                    *first = at;
                }
                let offset =
                    at.0.checked_sub(first.0)
                        .and_then(|o| u32::try_from(o).ok());
                match offset {
                    Some(offset) => offsets.push(offset),
                    None => {
                        let mut whole = Vec::with_capacity(offsets.capacity());
                        whole.extend(offsets.iter().map(|o| Micros(first.0 + *o as u64)));
                        whole.push(at);
                        *self = Times::Whole(whole);
                    }
                }
            }
            Times::Whole(times) => times.push(at),
        }
    }

    fn get(&self, i: usize) -> Micros {
        match self {
            Times::Offsets { first, offsets } => Micros(first.0 + offsets[i] as u64),
            Times::Whole(times) => times[i],
        }
    }

    fn last(&self) -> Option<Micros> {
        match self {
            Times::Offsets { first, offsets } => {
                offsets.last().map(|o| Micros(first.0 + *o as u64))
            }
            Times::Whole(times) => times.last().copied(),
        }
    }

    fn partition_point(&self, mut is_before: impl FnMut(Micros) -> bool) -> usize {
        match self {
            Times::Offsets { first, offsets } => {
                offsets.partition_point(|o| is_before(Micros(first.0 + *o as u64)))
            }
            Times::Whole(times) => times.partition_point(|at| is_before(*at)),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Times::Offsets { offsets, .. } => offsets.shrink_to_fit(),
            Times::Whole(times) => times.shrink_to_fit(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Times::Offsets { offsets, .. } => offsets.capacity() * size_of::<u32>(),
            Times::Whole(times) => times.capacity() * size_of::<Micros>(),
        }
    }
}

/// An event as the store holds it (see [`EventStore::stored`]).
enum Stored<'a> {
    Compact(Record, &'a Chunk),
    Whole(&'a Event),
}

/// Up to [`CHUNK_EVENTS`] events: their times, their records, their reads' observations and
/// the operation and cause of the messages that have both.
#[derive(Clone, Debug)]
struct Chunk {
    times: Times,
    records: Vec<Record>,
    observed: Vec<CompactObserved>,
    /// `op << 32 | caused_by` of each message sent with both, in the order they were sent.
    sent_both: Vec<u64>,
}

impl Chunk {
    fn shrink_to_fit(&mut self) {
        self.times.shrink_to_fit();
        self.records.shrink_to_fit();
        self.observed.shrink_to_fit();
        self.sent_both.shrink_to_fit();
    }
}

/// A trace's events, compactly; see the module's documentation.
#[derive(Clone, Debug, Default)]
pub struct EventStore {
    chunks: Vec<Chunk>,
    strings: Interner,
    /// Where rows are written and how values begin.
    rows: RowParts,
    /// Events kept whole.
    others: Vec<TraceEvent>,
    len: usize,
}

fn small(value: u64) -> Option<u32> {
    u32::try_from(value).ok().filter(|v| *v != NONE)
}

fn small_option(value: Option<u64>) -> Option<u32> {
    match value {
        None => Some(NONE),
        Some(v) => small(v),
    }
}

fn wide(value: u32) -> Option<u64> {
    (value != NONE).then_some(value as u64)
}

impl EventStore {
    /// An empty store.
    pub fn new() -> EventStore {
        EventStore::default()
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The interned strings.
    pub fn strings(&self) -> &Interner {
        &self.strings
    }

    /// Adds `event` after the others.
    pub fn push(&mut self, event: &TraceEvent) {
        if self
            .chunks
            .last()
            .is_none_or(|c| c.records.len() == CHUNK_EVENTS)
        {
            // The first chunk grows as needed, so a short trace stays small; later ones are
            // allocated whole.
            let capacity = if self.chunks.is_empty() {
                0
            } else {
                CHUNK_EVENTS
            };
            // The full chunk's observations grew by doubling: give back the room left.
            if let Some(full) = self.chunks.last_mut() {
                full.shrink_to_fit();
            }
            self.chunks.push(Chunk {
                times: Times::with_capacity(capacity),
                records: Vec::with_capacity(capacity),
                observed: Vec::new(),
                sent_both: Vec::new(),
            });
        }
        let chunk = self.chunks.last_mut().expect("a chunk was just ensured");
        let record = compact(&mut self.strings, &mut self.rows, chunk, &event.event)
            .unwrap_or_else(|| {
                let index = u32::try_from(self.others.len()).expect("fewer than 2³² rare events");
                self.others.push(event.clone());
                Record::Other { index }
            });
        chunk.times.push(event.at);
        chunk.records.push(record);
        self.len += 1;
    }

    /// Adds every event of `events`.
    pub fn extend<'a>(&mut self, events: impl IntoIterator<Item = &'a TraceEvent>) {
        for event in events {
            self.push(event);
        }
    }

    /// Gives back the room its vectors kept to grow (the last chunk's, the interner's), once no
    /// event will be added; adding one later still works.
    pub fn shrink_to_fit(&mut self) {
        self.chunks.shrink_to_fit();
        if let Some(last) = self.chunks.last_mut() {
            last.shrink_to_fit();
        }
        self.others.shrink_to_fit();
        self.rows.tables.shrink_to_fit();
        self.rows.prefixes.shrink_to_fit();
        self.strings.shrink_to_fit();
    }

    fn locate(&self, index: usize) -> (&Chunk, usize) {
        (&self.chunks[index / CHUNK_EVENTS], index % CHUNK_EVENTS)
    }

    /// The time of event `index`. Panics past the end, like a slice.
    pub fn at(&self, index: usize) -> Micros {
        assert!(index < self.len, "event {index} of {}", self.len);
        let (chunk, i) = self.locate(index);
        chunk.times.get(i)
    }

    /// The time of the last event.
    pub fn last_at(&self) -> Option<Micros> {
        self.len.checked_sub(1).map(|i| self.at(i))
    }

    /// How many events come before the first for which `is_after(time)` is true, assuming it
    /// is false for a prefix of the events and true for the rest (as times only grow, e.g.
    /// `|at| at > t` counts the events at or before `t`).
    pub fn partition_point(&self, mut is_before: impl FnMut(Micros) -> bool) -> usize {
        let full = self
            .chunks
            .partition_point(|c| c.times.last().is_some_and(&mut is_before));
        match self.chunks.get(full) {
            None => self.len,
            Some(chunk) => full * CHUNK_EVENTS + chunk.times.partition_point(is_before),
        }
    }

    /// Event `index`, decoded; `None` past the end.
    pub fn get(&self, index: usize) -> Option<TraceEvent> {
        if index >= self.len {
            return None;
        }
        let (chunk, i) = self.locate(index);
        Some(self.decode(chunk, chunk.times.get(i), chunk.records[i]))
    }

    /// Every event from `start` on, decoded, in order.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = TraceEvent> + '_ {
        (start.min(self.len)..self.len).map(|i| self.get(i).expect("index below len"))
    }

    /// Every event, decoded, in order.
    pub fn iter(&self) -> impl Iterator<Item = TraceEvent> + '_ {
        self.iter_from(0)
    }

    /// Every event, decoded, as a vector.
    pub fn to_vec(&self) -> Vec<TraceEvent> {
        self.iter().collect()
    }

    /// Event `index` as stored: its compact record, or the whole event when it was kept whole.
    fn stored(&self, index: usize) -> Option<Stored<'_>> {
        if index >= self.len {
            return None;
        }
        let (chunk, i) = self.locate(index);
        Some(match chunk.records[i] {
            Record::Other { index } => Stored::Whole(&self.others[index as usize].event),
            record => Stored::Compact(record, chunk),
        })
    }

    /// The text of event `index` if it is a narration, without decoding anything else.
    pub fn narration(&self, index: usize) -> Option<&str> {
        match self.stored(index)? {
            Stored::Compact(Record::Narration { text }, _) => Some(self.strings.get(text)),
            Stored::Whole(Event::Narration { text }) => Some(text),
            _ => None,
        }
    }

    /// The reason, if event `index` is a message's drop; read without decoding the event.
    pub fn drop_reason(&self, index: usize) -> Option<DropReason> {
        match self.stored(index)? {
            Stored::Compact(Record::Dropped { reason, .. }, _)
            | Stored::Whole(&Event::Dropped { reason, .. }) => Some(reason),
            _ => None,
        }
    }

    /// The copy's id, if event `index` is the network duplicating a message; read without
    /// decoding the event.
    pub fn copy_made(&self, index: usize) -> Option<MsgId> {
        match self.stored(index)? {
            Stored::Compact(Record::Duplicated { copy, .. }, _) => Some(MsgId(copy as u64)),
            Stored::Whole(&Event::Duplicated { copy, .. }) => Some(copy),
            _ => None,
        }
    }

    /// Event `index` if it sends a message: what it sent, borrowed, without allocating.
    pub fn sent(&self, index: usize) -> Option<SentRef<'_>> {
        match self.stored(index)? {
            Stored::Compact(record, chunk) => self.sent_record(chunk, record),
            Stored::Whole(Event::Sent {
                msg,
                from,
                to,
                kind,
                label,
                op,
                caused_by,
            }) => Some(SentRef {
                msg: *msg,
                from: *from,
                to: *to,
                kind: *kind,
                label,
                op: *op,
                caused_by: *caused_by,
            }),
            _ => None,
        }
    }

    /// What `record` of `chunk` sent, if it sends a message.
    fn sent_record(&self, chunk: &Chunk, record: Record) -> Option<SentRef<'_>> {
        let Record::Sent {
            kind,
            from,
            to,
            msg,
            label,
            extra,
        } = record
        else {
            return None;
        };
        let [op, caused_by] = match (from & HAS, to & HAS) {
            (0, 0) => [NONE, NONE],
            (_, 0) => [extra, NONE],
            (0, _) => [NONE, extra],
            _ => {
                let both = chunk.sent_both[extra as usize];
                [(both >> 32) as u32, both as u32]
            }
        };
        Some(SentRef {
            msg: MsgId(msg as u64),
            from: ServiceId((from & !HAS) as u16),
            to: ServiceId((to & !HAS) as u16),
            kind,
            label: self.strings.get(label),
            op: wide(op).map(OpId),
            caused_by: wide(caused_by).map(MsgId),
        })
    }

    fn decode(&self, chunk: &Chunk, at: Micros, record: Record) -> TraceEvent {
        let text = |id: StrId| self.strings.get(id).to_string();
        let event = match record {
            Record::ServiceUp { service } => Event::ServiceUp { service },
            Record::ServiceDown { service } => Event::ServiceDown { service },
            Record::Sent { .. } => {
                let sent = self
                    .sent_record(chunk, record)
                    .expect("a record of a message sent");
                Event::Sent {
                    msg: sent.msg,
                    from: sent.from,
                    to: sent.to,
                    kind: sent.kind,
                    label: sent.label.into(),
                    op: sent.op,
                    caused_by: sent.caused_by,
                }
            }
            Record::Delivered { msg } => Event::Delivered {
                msg: MsgId(msg as u64),
            },
            Record::Duplicated { msg, copy } => Event::Duplicated {
                msg: MsgId(msg as u64),
                copy: MsgId(copy as u64),
            },
            Record::Dropped { msg, reason } => Event::Dropped {
                msg: MsgId(msg as u64),
                reason,
            },
            Record::RowWritten {
                prefix,
                table,
                key,
                value,
                version,
            } => {
                let table = self.rows.tables[table as usize];
                let (service, table) = (ServiceId((table >> 32) as u16), StrId(table as u32));
                let value = match prefix.checked_sub(1) {
                    None => text(value),
                    Some(p) => {
                        let mut whole = self
                            .strings
                            .get(StrId(self.rows.prefixes[p as usize]))
                            .to_string();
                        whole.push_str(self.strings.get(value));
                        whole
                    }
                };
                Event::RowWritten {
                    service,
                    table: text(table),
                    key: text(key),
                    value,
                    version: version as u64,
                }
            }
            Record::QueueDepth {
                service,
                queue,
                depth,
            } => Event::QueueDepth {
                service,
                queue: text(queue),
                depth,
            },
            Record::ServiceLoad {
                service,
                workers,
                busy,
                waiting,
            } => Event::ServiceLoad {
                service,
                workers,
                busy,
                waiting,
            },
            Record::OpStarted { op, name, client } => Event::OpStarted {
                op: OpId(op as u64),
                name: text(name),
                client,
            },
            Record::OpFinished {
                op,
                latency_us,
                observed_first,
                observed_count,
            } => {
                let first = observed_first as usize;
                let observed = chunk.observed[first..first + observed_count as usize]
                    .iter()
                    .map(|o| {
                        let (source_service, source_table, key) = self.strings.row(o.row);
                        Observed {
                            source_service,
                            source_table: source_table.to_string().into(),
                            key: key.into(),
                            version: o.version as u64,
                        }
                    })
                    .collect();
                Event::OpFinished {
                    op: OpId(op as u64),
                    outcome: Outcome::Ok,
                    latency: Micros(latency_us as u64),
                    observed,
                }
            }
            Record::OpFailed {
                op,
                latency_us,
                reason,
            } => Event::OpFinished {
                op: OpId(op as u64),
                outcome: Outcome::Failed {
                    reason: text(reason),
                },
                latency: Micros(latency_us as u64),
                observed: Vec::new(),
            },
            Record::EventHandled {
                service,
                event_id,
                published_at_us: [low, high],
                applied,
            } => Event::EventHandled {
                service,
                event_id: text(event_id),
                published_at: Micros(((high as u64) << 32) | low as u64),
                applied,
            },
            Record::Narration { text: id } => Event::Narration { text: text(id) },
            Record::Other { index } => return self.others[index as usize].clone(),
        };
        TraceEvent { at, event }
    }

    /// Heap bytes the store holds, counted from its buffers' capacities (the interner's map
    /// estimated), so the figure is the same on every machine.
    pub fn heap_bytes(&self) -> usize {
        let chunks: usize = self
            .chunks
            .iter()
            .map(|c| {
                c.times.heap_bytes()
                    + c.records.capacity() * size_of::<Record>()
                    + c.observed.capacity() * size_of::<CompactObserved>()
                    + c.sent_both.capacity() * size_of::<u64>()
            })
            .sum();
        let others: usize = self.others.capacity() * size_of::<TraceEvent>()
            + self
                .others
                .iter()
                .map(|e| strings_capacity(&e.event))
                .sum::<usize>();
        self.chunks.capacity() * size_of::<Chunk>()
            + chunks
            + others
            + self.rows.tables.capacity() * size_of::<u64>()
            + self.rows.prefixes.capacity() * size_of::<u32>()
            + self.strings.heap_bytes()
    }
}

/// A message send as stored, borrowed from the store.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SentRef<'a> {
    /// Its id.
    pub msg: MsgId,
    /// The sender.
    pub from: ServiceId,
    /// The receiver.
    pub to: ServiceId,
    /// Its kind.
    pub kind: MessageKind,
    /// Its label.
    pub label: &'a str,
    /// The client operation it serves, if any.
    pub op: Option<OpId>,
    /// The message whose handling sent it, if any.
    pub caused_by: Option<MsgId>,
}

/// The compact form of `event`, interning its strings and adding its observations to `chunk`;
/// `None` for an event kept whole.
fn compact(
    strings: &mut Interner,
    rows: &mut RowParts,
    chunk: &mut Chunk,
    event: &Event,
) -> Option<Record> {
    Some(match event {
        Event::ServiceUp { service } => Record::ServiceUp { service: *service },
        Event::ServiceDown { service } => Record::ServiceDown { service: *service },
        Event::Sent {
            msg,
            from,
            to,
            kind,
            label,
            op,
            caused_by,
        } => {
            let (kind, msg) = (*kind, small(msg.0)?);
            let from = u8::try_from(from.0).ok().filter(|f| f & HAS == 0)?;
            let to = u8::try_from(to.0).ok().filter(|t| t & HAS == 0)?;
            let op = small_option(op.map(|o| o.0))?;
            let caused_by = small_option(caused_by.map(|m| m.0))?;
            let label = strings.intern(label)?;
            let has = |id: u32| if id == NONE { 0 } else { HAS };
            let extra = match (op, caused_by) {
                (op, NONE) => op,
                (NONE, caused_by) => caused_by,
                both => {
                    let index = u32::try_from(chunk.sent_both.len()).ok()?;
                    chunk
                        .sent_both
                        .push(((both.0 as u64) << 32) | both.1 as u64);
                    index
                }
            };
            Record::Sent {
                kind,
                from: from | has(op),
                to: to | has(caused_by),
                msg,
                label,
                extra,
            }
        }
        Event::Delivered { msg } => Record::Delivered { msg: small(msg.0)? },
        Event::Duplicated { msg, copy } => Record::Duplicated {
            msg: small(msg.0)?,
            copy: small(copy.0)?,
        },
        Event::Dropped { msg, reason } => Record::Dropped {
            msg: small(msg.0)?,
            reason: *reason,
        },
        Event::RowWritten {
            service,
            table,
            key,
            value,
            version,
        } => {
            let version = small(*version)?;
            let table = ((service.0 as u64) << 32) | strings.intern(table)?.0 as u64;
            let tables = &mut rows.tables;
            let table = match tables.iter().position(|t| *t == table) {
                Some(number) => number,
                // Past this many tables a scan would be slow: such writes are kept whole.
                None if tables.len() < MAX_TABLES => {
                    tables.push(table);
                    tables.len() - 1
                }
                None => return None,
            };
            let (prefix, value) = rows.split_value(strings, value)?;
            Record::RowWritten {
                prefix,
                table: table as u16,
                key: strings.intern(key)?,
                value: strings.intern(value)?,
                version,
            }
        }
        Event::QueueDepth {
            service,
            queue,
            depth,
        } => Record::QueueDepth {
            service: *service,
            queue: strings.intern(queue)?,
            depth: *depth,
        },
        Event::ServiceLoad {
            service,
            workers,
            busy,
            waiting,
        } => Record::ServiceLoad {
            service: *service,
            workers: *workers,
            busy: *busy,
            waiting: *waiting,
        },
        Event::OpStarted { op, name, client } => Record::OpStarted {
            op: small(op.0)?,
            name: strings.intern(name)?,
            client: *client,
        },
        Event::OpFinished {
            op,
            outcome,
            latency,
            observed,
        } => {
            let (op, latency_us) = (small(op.0)?, small(latency.0)?);
            match outcome {
                Outcome::Ok => {}
                Outcome::Failed { reason } if observed.is_empty() => {
                    return Some(Record::OpFailed {
                        op,
                        latency_us,
                        reason: strings.intern(reason)?,
                    });
                }
                // Rare (only reads a circuit breaker answered from its fallback, and no failed
                // operation observes anything): kept whole.
                Outcome::Failed { .. } | Outcome::Degraded { .. } => return None,
            }
            let compacted = observed
                .iter()
                .map(|o| {
                    Some(CompactObserved {
                        row: strings.intern_row(o.source_service, &o.source_table, &o.key)?,
                        version: small(o.version)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            let record = Record::OpFinished {
                op,
                latency_us,
                observed_first: u32::try_from(chunk.observed.len()).ok()?,
                observed_count: u16::try_from(compacted.len()).ok()?,
            };
            chunk.observed.extend(compacted);
            record
        }
        Event::EventHandled {
            service,
            event_id,
            published_at,
            applied,
        } => Record::EventHandled {
            service: *service,
            event_id: strings.intern(event_id)?,
            published_at_us: [published_at.0 as u32, (published_at.0 >> 32) as u32],
            applied: *applied,
        },
        Event::Narration { text } => Record::Narration {
            text: strings.intern(text)?,
        },
        // Rare: kept whole.
        Event::PartialUpdateFlagged { .. }
        | Event::WriteAborted { .. }
        | Event::FaultBegins { .. }
        | Event::FaultEnds { .. }
        | Event::CircuitChanged { .. }
        | Event::RunEnded { .. } => return None,
    })
}

/// Heap bytes of the strings an event kept whole owns (faults' own strings left out: a few per
/// run).
fn strings_capacity(event: &Event) -> usize {
    match event {
        Event::Sent { label, .. } => label.heap_capacity(),
        Event::RowWritten {
            table, key, value, ..
        } => table.capacity() + key.capacity() + value.capacity(),
        Event::QueueDepth { queue, .. } => queue.capacity(),
        Event::OpStarted { name, .. } => name.capacity(),
        Event::OpFinished {
            outcome, observed, ..
        } => {
            let reason = match outcome {
                Outcome::Ok => 0,
                Outcome::Failed { reason } | Outcome::Degraded { reason } => reason.capacity(),
            };
            reason
                + observed.capacity() * size_of::<Observed>()
                + observed.iter().map(Observed::heap_capacity).sum::<usize>()
        }
        Event::EventHandled { event_id, .. } => event_id.capacity(),
        Event::PartialUpdateFlagged { key, text, .. } => key.capacity() + text.capacity(),
        Event::WriteAborted {
            source_table, key, ..
        } => source_table.capacity() + key.capacity(),
        Event::Narration { text } => text.capacity(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{EndReason, RunRequest, Trace, TraceHasher};

    #[test]
    fn a_record_is_16_bytes() {
        assert_eq!(size_of::<Record>(), 16);
        assert_eq!(size_of::<CompactObserved>(), 8);
    }

    fn store_of(events: &[TraceEvent]) -> EventStore {
        let mut store = EventStore::new();
        store.extend(events);
        store
    }

    #[test]
    fn every_scenario_reads_back_exactly_with_the_same_hash() {
        // Every scenario at its defaults, request/response with a capacity (service_load), and
        // both scenarios with an outbox (values that begin alike).
        let capacity: crate::protocol::KnobMap = [
            ("product_workers".to_string(), 2.0),
            ("product_service_ms".to_string(), 100.0),
        ]
        .into();
        let outbox: crate::protocol::KnobMap = [("publish".to_string(), 1.0)].into();
        let find = |name| crate::scenario::find(name).unwrap();
        let runs = crate::scenario::catalog()
            .iter()
            .map(|spec| (spec, Default::default()))
            .chain([
                (find("request-response"), capacity),
                (find("eventual-consistency"), outbox.clone()),
                (find("event-driven"), {
                    let mut knobs = outbox;
                    knobs.insert("idempotent".into(), 1.0);
                    knobs
                }),
            ]);
        for (spec, knobs) in runs {
            let request = RunRequest {
                scenario: spec.name.into(),
                seed: 5,
                until_s: 30.0,
                knobs,
                faults: vec![
                    "reorder:*=20%@1+2".into(),
                    "drop:*=5%@3+3".into(),
                    "duplicate:*=10%@5+3".into(),
                ],
            };
            let trace = crate::scenario::simulate(&request);
            let store = store_of(&trace.events);
            assert_eq!(store.len(), trace.events.len());
            let back = Trace {
                header: trace.header.clone(),
                events: store.to_vec(),
            };
            assert_eq!(back.events, trace.events, "{}", spec.name);
            assert_eq!(back.to_jsonl(), trace.to_jsonl(), "{}", spec.name);
            assert_eq!(back.hash_hex(), trace.hash_hex(), "{}", spec.name);
            for (i, event) in trace.events.iter().enumerate().step_by(97) {
                assert_eq!(store.at(i), event.at);
                assert_eq!(store.get(i).as_ref(), Some(event));
            }
            assert_eq!(store.get(trace.events.len()), None);
        }
    }

    #[test]
    fn numbers_too_wide_for_a_record_are_kept_whole() {
        let at = Micros(1);
        let events = [
            Event::Sent {
                msg: MsgId(u32::MAX as u64),
                from: ServiceId(0),
                to: ServiceId(1),
                kind: MessageKind::Request,
                label: "GET /x".into(),
                op: Some(OpId(u64::MAX)),
                caused_by: None,
            },
            Event::Delivered {
                msg: MsgId(1 << 40),
            },
            Event::RowWritten {
                service: ServiceId(1),
                table: "t".into(),
                key: "k".into(),
                value: "v".into(),
                version: 1 << 33,
            },
            Event::OpFinished {
                op: OpId(3),
                outcome: Outcome::Failed {
                    reason: "slow".into(),
                },
                latency: Micros(u64::MAX),
                observed: vec![],
            },
            Event::EventHandled {
                service: ServiceId(2),
                event_id: "OrderCreated#1".into(),
                published_at: Micros(u64::MAX - 1),
                applied: false,
            },
            Event::RunEnded {
                reason: EndReason::Budget,
                messages_in_flight: 3,
            },
        ]
        .map(|event| TraceEvent { at, event });
        let store = store_of(&events);
        assert_eq!(store.to_vec(), events);
        // Only the event-handled one fits a record: its time is split in two halves.
        assert_eq!(store.others.len(), 5);
        let mut whole = TraceHasher::default();
        let mut read_back = TraceHasher::default();
        for (a, b) in events.iter().zip(store.iter()) {
            whole.add_event(a);
            read_back.add_event(&b);
        }
        assert_eq!(whole.hex(), read_back.hex());
    }

    #[test]
    fn every_form_of_a_record_and_what_lies_beside_it_reads_back() {
        let sent = |msg: u64, from: u16, op: Option<u64>, caused_by: Option<u64>| Event::Sent {
            msg: MsgId(msg),
            from: ServiceId(from),
            to: ServiceId(1),
            kind: MessageKind::Event,
            label: format!("m{msg}").into(),
            op: op.map(OpId),
            caused_by: caused_by.map(MsgId),
        };
        let written = |service: u16, table: &str, version: u64| Event::RowWritten {
            service: ServiceId(service),
            table: table.into(),
            key: "k".into(),
            value: format!("v{version}"),
            version,
        };
        let observed = vec![Observed {
            source_service: ServiceId(2),
            source_table: "t".into(),
            key: "k".into(),
            version: 4,
        }];
        let finished = |outcome: Outcome, observed: Vec<Observed>| Event::OpFinished {
            op: OpId(9),
            outcome,
            latency: Micros(12),
            observed,
        };
        let failed = || Outcome::Failed {
            reason: "no answer".into(),
        };
        let events = [
            sent(1, 0, None, None),
            sent(2, 0, Some(7), None),
            sent(3, 2, None, Some(1)),
            sent(4, 2, Some(7), Some(2)),
            sent(5, 3, Some(8), Some(3)),
            sent(6, 127, Some(8), None),
            // Kept whole: a service numbered past 127.
            sent(7, 128, Some(8), Some(3)),
            written(2, "t", 1),
            written(3, "t", 1),
            written(2, "u", 2),
            written(2, "t", 3),
            finished(Outcome::Ok, observed.clone()),
            finished(failed(), Vec::new()),
            // Kept whole: no failed operation observes anything, so a record has no room for it.
            finished(failed(), observed),
        ]
        .map(|event| TraceEvent {
            at: Micros(3),
            event,
        });
        let mut store = store_of(&events);
        assert_eq!(store.to_vec(), events);
        assert_eq!(store.others.len(), 2);
        assert_eq!(store.chunks[0].sent_both, [7 << 32 | 2, 8 << 32 | 3]);
        let (t, u) = (store.strings.intern("t"), store.strings.intern("u"));
        let tables = [(ServiceId(2), t), (ServiceId(3), t), (ServiceId(2), u)];
        assert_eq!(
            store.rows.tables,
            tables.map(|(s, t)| (s.0 as u64) << 32 | t.unwrap().0 as u64)
        );
        for (i, event) in events.iter().enumerate() {
            let Event::Sent { label, op, .. } = &event.event else {
                continue;
            };
            let sent = store.sent(i).unwrap();
            assert_eq!((sent.label, sent.op), (label.as_str(), *op));
        }
        // Past MAX_TABLES tables, a row is kept whole.
        let many: Vec<TraceEvent> = (0..MAX_TABLES + 2)
            .map(|i| TraceEvent {
                at: Micros(3),
                event: written(1, &format!("t{i}"), 1),
            })
            .collect();
        let store = store_of(&many);
        assert_eq!(store.to_vec(), many);
        assert_eq!(
            (store.rows.tables.len(), store.others.len()),
            (MAX_TABLES, 2)
        );
    }

    #[test]
    fn values_that_begin_alike_keep_their_beginning_once() {
        let values = [
            "pending: OrderCreated 7 [1,2]",
            "sent: OrderCreated 7 [1,2]",
            "OrderCreated 7 [1,2]",
            "a: ",
            ": x",
            "sent:  two spaces",
            "a beginning too long: x",
            "no colon",
            "",
        ];
        let written = |value: &str| TraceEvent {
            at: Micros(1),
            event: Event::RowWritten {
                service: ServiceId(1),
                table: "outbox".into(),
                key: "1".into(),
                value: value.into(),
                version: 1,
            },
        };
        let events: Vec<TraceEvent> = values.iter().map(|v| written(v)).collect();
        let mut store = store_of(&events);
        assert_eq!(store.to_vec(), events);
        let prefixes: Vec<&str> = store
            .rows
            .prefixes
            .iter()
            .map(|p| store.strings.get(StrId(*p)))
            .collect();
        assert_eq!(prefixes, ["pending: ", "sent: ", "a: ", ": "]);
        // The event after its beginning is kept once, for both of the outbox's values.
        let rest = store.strings.len();
        assert!(store.strings.intern("OrderCreated 7 [1,2]").is_some());
        assert_eq!(store.strings.len(), rest);
        // Past 255 beginnings, values are kept as they are.
        let word = |i: u32| {
            let letter = |d: u32| char::from(b'a' + (d % 26) as u8);
            format!("{}{}: x", letter(i / 26), letter(i))
        };
        let many: Vec<TraceEvent> = (0..300).map(|i| written(&word(i))).collect();
        let mut store = store_of(&many);
        assert_eq!(store.to_vec(), many);
        assert_eq!(store.rows.prefixes.len(), 255);
        // Neither a beginning past the table nor one with a digit is interned.
        let strings = store.strings.len();
        store.push(&written(&word(299)));
        store.push(&written("#12 started: x"));
        assert_eq!(store.strings.len(), strings + 1);
        assert_eq!(store.get(300), Some(written(&word(299))));
        assert_eq!(store.get(301), Some(written("#12 started: x")));
    }

    #[test]
    fn strings_whose_hashes_collide_keep_their_own_numbers() {
        let mut strings = Interner::default();
        let a = strings.intern_hashed("a", 7).unwrap();
        let b = strings.intern_hashed("b", 7).unwrap();
        let c = strings.intern_hashed("c", 7).unwrap();
        assert_eq!((a, b, c), (StrId(0), StrId(1), StrId(2)));
        assert_eq!(strings.intern_hashed("b", 7), Some(b));
        assert_eq!(strings.intern_hashed("a", 7), Some(a));
        assert_eq!(strings.intern_hashed("c", 7), Some(c));
        assert_eq!(
            (strings.get(a), strings.get(b), strings.get(c)),
            ("a", "b", "c")
        );
        assert_eq!(strings.len(), 3);
        // Enough strings to grow the table several times: each keeps its number and text.
        let texts: Vec<String> = (0..1000).map(|i| format!("OrderCreated#{i}")).collect();
        let ids: Vec<StrId> = texts.iter().map(|t| strings.intern(t).unwrap()).collect();
        for (text, id) in texts.iter().zip(&ids) {
            assert_eq!(strings.intern(text), Some(*id));
            assert_eq!(strings.get(*id), text);
        }
        assert_eq!(strings.len(), 1003);
        assert_eq!(strings.intern(""), Some(StrId(1003)));
        assert_eq!(strings.get(StrId(1003)), "");
        assert_eq!(strings.get(a), "a");
        // Shrunk, it drops its table; interning again finds every string under its number and
        // numbers new ones after them.
        let rows = [
            strings.intern_row(ServiceId(1), "t", "k").unwrap(),
            strings.intern_row(ServiceId(2), "t", "k").unwrap(),
        ];
        strings.shrink_to_fit();
        assert!(strings.slots.is_empty() && strings.row_ids.is_empty());
        assert_eq!(strings.intern(&texts[999]), Some(ids[999]));
        assert!(strings.slots.len() * 3 >= (strings.len() + 1) * 4);
        for (text, id) in texts.iter().zip(&ids) {
            assert_eq!(strings.intern(text), Some(*id));
        }
        assert_eq!(strings.intern("new"), Some(StrId(1006)));
        assert_eq!(strings.intern_row(ServiceId(2), "t", "k"), Some(rows[1]));
        assert_eq!(strings.intern_row(ServiceId(1), "t", "k"), Some(rows[0]));
        assert_eq!(
            strings.intern_row(ServiceId(3), "t", "k"),
            Some(rows[1] + 1)
        );
        // FNV-1a as published: the empty string hashes to the offset basis.
        assert_eq!(fnv1a(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn times_that_jump_far_or_go_back_are_kept_whole() {
        let times = [5, 6, 6 + u32::MAX as u64 + 1, 3, u64::MAX, 7];
        let events: Vec<TraceEvent> = times
            .iter()
            .map(|t| TraceEvent {
                at: Micros(*t),
                event: Event::Delivered { msg: MsgId(1) },
            })
            .collect();
        let store = store_of(&events);
        assert_eq!(store.to_vec(), events);
        assert!(matches!(store.chunks[0].times, Times::Whole(_)));
        let steady = store_of(&events[..2]);
        assert!(matches!(steady.chunks[0].times, Times::Offsets { .. }));
    }

    #[test]
    fn times_are_found_across_chunks() {
        let events: Vec<TraceEvent> = (0..3 * CHUNK_EVENTS as u64 + 5)
            .map(|i| TraceEvent {
                at: Micros(i / 3),
                event: Event::Delivered { msg: MsgId(i) },
            })
            .collect();
        let store = store_of(&events);
        for t in [0, 1, 1365, 1366, 4095, 4096, 10_000, 99_999] {
            let expected = events.partition_point(|e| e.at <= Micros(t));
            assert_eq!(store.partition_point(|at| at <= Micros(t)), expected, "{t}");
            let expected = events.partition_point(|e| e.at < Micros(t));
            assert_eq!(store.partition_point(|at| at < Micros(t)), expected, "{t}");
        }
        assert_eq!(store.last_at(), events.last().map(|e| e.at));
        assert_eq!(
            store.iter_from(2 * CHUNK_EVENTS).collect::<Vec<_>>(),
            events[2 * CHUNK_EVENTS..]
        );
    }

    #[test]
    fn sends_drops_copies_and_narration_read_without_decoding() {
        let trace = crate::scenario::simulate(&RunRequest {
            scenario: "request-response".into(),
            seed: 2,
            until_s: 20.0,
            knobs: Default::default(),
            faults: vec!["duplicate:*=10%@0".into(), "drop:*=10%@0".into()],
        });
        let store = store_of(&trace.events);
        for (i, event) in trace.events.iter().enumerate() {
            match &event.event {
                Event::Sent {
                    msg,
                    from,
                    to,
                    kind,
                    label,
                    op,
                    caused_by,
                } => {
                    let sent = store.sent(i).unwrap();
                    assert_eq!(
                        (sent.msg, sent.from, sent.to, sent.kind, sent.label),
                        (*msg, *from, *to, *kind, label.as_str())
                    );
                    assert_eq!((sent.op, sent.caused_by), (*op, *caused_by));
                }
                Event::Narration { text } => assert_eq!(store.narration(i), Some(text.as_str())),
                Event::Dropped { reason, .. } => assert_eq!(store.drop_reason(i), Some(*reason)),
                Event::Duplicated { copy, .. } => assert_eq!(store.copy_made(i), Some(*copy)),
                _ => assert!(
                    store.sent(i).is_none()
                        && store.narration(i).is_none()
                        && store.drop_reason(i).is_none()
                        && store.copy_made(i).is_none()
                ),
            }
        }
    }
}
