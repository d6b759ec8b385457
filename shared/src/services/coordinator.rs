//! The coordinator of the gateway pattern. It takes each rename, sends it to Product and to Order
//! at once, and waits for both. Both applied → the client gets success. Either refused, was down
//! or did not answer in time → the coordinator rolls the rename back and the client gets a
//! failure. It logs every update it runs in its own table, so that after a crash it finds the one
//! it left half done and flags it as a partial update.
//!
//! Versions. The coordinator runs one update per product at a time (later renames of that product
//! wait their turn), so its log holds each product's current version. An update carries version
//! v = the log's version + 1; Product and Order store it only if it is newer than their row, so
//! Product keeps increasing versions and Order's copy holds exactly the coordinator's. A rollback
//! stores the old name again at a new version v + 1 — rows never move backwards, and an update
//! that arrives after its rollback is ignored. It goes to both services, also to one that refused
//! (whose row already holds the old name), so that both end on the same version, and it is retried
//! until both have acknowledged it: a compensation must land.
//!
//! Two-phase commit (`Protocol::TwoPhaseCommit`). The same rename is first sent to be prepared:
//! each service holds the new name beside its committed one and votes. Both yes → the coordinator
//! logs "committing" and only then tells both to commit; the client hears success once both
//! have. A no, an outage or a timeout → it logs "aborting", tells the client, and tells both to
//! abort. A decision, like a rollback, is retried until both acknowledge it. Because the decision
//! is in the log before anyone hears it, a crash after deciding loses nothing: on restart the
//! coordinator sends it again, and an update found with no decision is aborted (presumed abort).
//! Meanwhile the services' prepared rows stay in doubt. An aborted update keeps version v
//! unused: the committed rows stay at v − 1, the next update takes v + 1.

use super::PRODUCTS_TABLE;
use crate::protocol::{Event, MsgId, Payload, ServiceId};
use crate::service::{Ctx, Envelope, Input, Service, TimerId, TimerMap};
use crate::slot_map::SlotMap;
use crate::time::Micros;
use std::collections::VecDeque;

/// The coordinator's log: key product id, value a [`LogEntry`], version the product's version.
pub const RENAME_LOG_TABLE: &str = "rename_log";

/// How the coordinator is wired and behaves.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    /// The Product service, source of truth for names.
    pub product: ServiceId,
    /// The Order service, which keeps a copy of names.
    pub order: ServiceId,
    /// Products are numbered `1..=products`.
    pub products: u64,
    /// How long it waits for both services to answer an update, and for each rollback.
    pub timeout: Micros,
    /// The rename (counted from 1 over the whole run) at which it crashes after sending the
    /// update to Product and before sending it to Order; `None` for never.
    pub crash_at_rename: Option<u64>,
    /// How long it stays down after that crash.
    pub restart_after: Micros,
    /// The most renames waiting for an earlier rename of the same product; more are refused.
    pub waiting_capacity: usize,
    /// Saga (apply at once, roll back on failure) or two-phase commit.
    pub protocol: Protocol,
}

/// How the coordinator makes a rename happen at both services.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// Both apply the rename at once; on any failure both are told to roll it back. Readers can
    /// see a rename that is rolled back a moment later.
    Saga,
    /// Both prepare it (the new name held, the committed one still served, the row locked),
    /// the coordinator logs its decision, then both commit or abort. Readers never see an
    /// undecided name; writes take a round trip more, and rows stay in doubt while the
    /// coordinator is down between deciding and telling.
    TwoPhaseCommit,
}

/// Where an update stands, as the log records it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogState {
    /// Both services hold `to`.
    Done,
    /// `from → to` was sent; the answers are not all in.
    Applying,
    /// The update failed; the rollback `from → to` is not acknowledged by both yet.
    RollingBack,
    /// The rollback landed at both services: both hold `to` again.
    RolledBack,
    /// Found unfinished after a crash: the services may disagree.
    Partial,
    /// Two-phase commit: `from → to` was sent to be prepared; no decision yet.
    Preparing,
    /// Two-phase commit: the decision to commit `from → to` is logged; not yet acknowledged by both.
    Committing,
    /// Two-phase commit: the decision to abort (`from` the name not taken, `to` the name kept)
    /// is logged; not yet acknowledged by both.
    Aborting,
    /// Two-phase commit: both acknowledged the abort; the product keeps `to`.
    Aborted,
}

impl LogState {
    fn word(self) -> &'static str {
        match self {
            LogState::Done => "done",
            LogState::Applying => "applying",
            LogState::RollingBack => "rolling back",
            LogState::RolledBack => "rolled back",
            LogState::Partial => "PARTIAL",
            LogState::Preparing => "preparing",
            LogState::Committing => "committing",
            LogState::Aborting => "aborting",
            LogState::Aborted => "aborted",
        }
    }
}

/// One row of the coordinator's log, written as text a person can read in the page's table,
/// such as `#5 applying: Oak Chair → Smart Oak Chair`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Which rename, counted from 1 over the run; 0 for the starting state.
    pub number: u64,
    /// Where it stands.
    pub state: LogState,
    /// The name before, while a change is under way.
    pub from: Option<String>,
    /// The name the product has, or is being given.
    pub to: String,
}

impl LogEntry {
    /// The entry for a product's starting name.
    pub fn initial(name: &str) -> LogEntry {
        LogEntry {
            number: 0,
            state: LogState::Done,
            from: None,
            to: name.to_string(),
        }
    }

    /// The entry as the row's value.
    pub fn to_value(&self) -> String {
        let head = format!("#{} {}", self.number, self.state.word());
        match &self.from {
            Some(from) => format!("{head}: {from} → {}", self.to),
            None => format!("{head}: {}", self.to),
        }
    }

    /// Reads a row's value written by [`LogEntry::to_value`].
    pub fn parse(value: &str) -> Option<LogEntry> {
        let (number, rest) = value.strip_prefix('#')?.split_once(' ')?;
        let (word, names) = rest.split_once(": ")?;
        let state = [
            LogState::Done,
            LogState::Applying,
            LogState::RollingBack,
            LogState::RolledBack,
            LogState::Partial,
            LogState::Preparing,
            LogState::Committing,
            LogState::Aborting,
            LogState::Aborted,
        ]
        .into_iter()
        .find(|state| state.word() == word)?;
        let (from, to) = match names.split_once(" → ") {
            Some((from, to)) => (Some(from.to_string()), to.to_string()),
            None => (None, names.to_string()),
        };
        Some(LogEntry {
            number: number.parse().ok()?,
            state,
            from,
            to,
        })
    }
}

/// The two services every update goes to, by index.
const PARTICIPANT_NAMES: [&str; 2] = ["Product", "Order"];
/// The wait before retrying a rollback that was refused or not answered in time, at its first
/// retry; it doubles with each retry up to [`ROLLBACK_BACKOFF_MAX`], and each wait is drawn
/// between half of it and all of it (jitter), so retries neither flood a struggling service nor
/// fall into step with each other.
const ROLLBACK_BACKOFF_MIN: Micros = Micros::from_millis(100);
/// The longest wait between rollback retries.
const ROLLBACK_BACKOFF_MAX: Micros = Micros::from_secs(5);

/// The wait before a rollback's next attempt, after `attempts` attempts: exponential, capped,
/// with jitter.
fn rollback_backoff(attempts: u32, rng: &mut crate::rng::SimRng) -> Micros {
    let doublings = attempts.saturating_sub(1).min(16);
    let full = (ROLLBACK_BACKOFF_MIN.0 << doublings).min(ROLLBACK_BACKOFF_MAX.0);
    Micros(full / 2 + rng.below(full / 2 + 1))
}

/// What a service said to an update.
#[derive(Clone, Debug, PartialEq)]
enum Answer {
    Waiting,
    Applied,
    Refused(String),
    Down,
}

/// The rollback to one service, or under two-phase commit the decision: sent, retried with
/// backoff, until the service acknowledges it.
#[derive(Debug)]
struct RollbackLeg {
    /// The attempt whose answer is awaited, if any (none while waiting to retry).
    msg: Option<MsgId>,
    /// The answer's timeout while an attempt is awaited, else the retry's.
    timer: TimerId,
    /// Attempts sent so far.
    attempts: u32,
    /// Whether the service was found down, so its outage is narrated once.
    found_down: bool,
    done: bool,
    /// Every attempt sent (two-phase commit's decisions), so an answer to any of them counts.
    sent: Vec<MsgId>,
}

impl RollbackLeg {
    fn new() -> RollbackLeg {
        RollbackLeg {
            msg: None,
            timer: TimerId(0),
            attempts: 0,
            found_down: false,
            done: false,
            sent: Vec::new(),
        }
    }
}

#[derive(Debug)]
enum Phase {
    Applying {
        calls: [MsgId; 2],
        answers: [Answer; 2],
        timer: TimerId,
    },
    RollingBack {
        legs: [RollbackLeg; 2],
    },
    /// Two-phase commit: the decision is logged and being delivered to both, retried until
    /// each acknowledges it.
    Deciding {
        commit: bool,
        legs: [RollbackLeg; 2],
    },
}

/// An update in progress for one product.
#[derive(Debug)]
struct Update {
    number: u64,
    /// The client's rename; `None` for an update recovered from the log after a crash.
    request: Option<Envelope>,
    product: u64,
    old_name: String,
    new_name: String,
    version: u64,
    phase: Phase,
}

/// A rename waiting for an earlier rename of the same product.
#[derive(Debug)]
struct Waiting {
    request: Envelope,
    product: u64,
    name: String,
    /// Fires when it has waited one timeout: it is refused then.
    timer: TimerId,
}

#[derive(Copy, Clone, Debug)]
enum CoordinatorTimer {
    ApplyTimeout(u64),
    Rollback(u64, usize),
    WaitedTooLong(MsgId),
}

/// The coordinator.
#[derive(Debug)]
pub struct Coordinator {
    config: CoordinatorConfig,
    /// Renames started over the run, recovered from the log after a restart.
    renames_started: u64,
    /// Updates in progress, by product.
    active: SlotMap<u64, Update>,
    waiting: VecDeque<Waiting>,
    timers: TimerMap<CoordinatorTimer>,
    /// Whether a success was narrated, so only the first is.
    narrated_success: bool,
    /// Whether a commit decision was narrated (two-phase commit), so only the first is.
    narrated_decision: bool,
}

impl Coordinator {
    /// A coordinator with nothing in progress; on start it reads its log.
    pub fn new(config: CoordinatorConfig) -> Coordinator {
        Coordinator {
            config,
            renames_started: 0,
            active: SlotMap::new(),
            waiting: VecDeque::new(),
            timers: SlotMap::new(),
            narrated_success: false,
            narrated_decision: false,
        }
    }

    fn participant(&self, index: usize) -> ServiceId {
        if index == 0 {
            self.config.product
        } else {
            self.config.order
        }
    }

    /// Reads the log; flags every update a crash left unfinished.
    fn recover(&mut self, ctx: &mut Ctx<'_>) {
        for product in 1..=self.config.products {
            let key = product.to_string();
            let Some(row) = ctx.read(RENAME_LOG_TABLE, &key) else {
                continue;
            };
            let Some(mut entry) = LogEntry::parse(&row.value) else {
                continue;
            };
            self.renames_started = self.renames_started.max(entry.number);
            if matches!(
                entry.state,
                LogState::Preparing | LogState::Committing | LogState::Aborting
            ) {
                self.recover_decision(product, entry, row.version, ctx);
                continue;
            }
            if !matches!(entry.state, LogState::Applying | LogState::RollingBack) {
                continue;
            }
            let what = match entry.state {
                LogState::Applying => "rename",
                _ => "rollback of rename",
            };
            let from = entry.from.clone().unwrap_or_default();
            let text = format!(
                "{what} #{} of product {product} (\"{from}\" → \"{}\", v{}) was left half done",
                entry.number, entry.to, row.version
            );
            ctx.narrate(format!(
                "Coordinator restarts and finds in its log that the {text}: Product and Order may now \
                 disagree on product {product}'s name. It flags a partial update."
            ));
            entry.state = LogState::Partial;
            ctx.write(RENAME_LOG_TABLE, &key, &entry.to_value(), row.version);
            ctx.record(Event::PartialUpdateFlagged {
                service: ctx.me,
                key,
                text,
            });
        }
    }

    /// Two-phase commit, after a restart: a logged decision is sent again; an update with no
    /// decision logged is aborted (presumed abort: no one was told it committed). Until each
    /// participant hears it, its row stays prepared — in doubt, locked.
    fn recover_decision(&mut self, product: u64, entry: LogEntry, version: u64, ctx: &mut Ctx<'_>) {
        let from = entry.from.clone().unwrap_or_default();
        let (commit, old_name, new_name) = match entry.state {
            LogState::Committing => (true, from, entry.to.clone()),
            LogState::Aborting => (false, entry.to.clone(), from),
            _ => (false, from, entry.to.clone()),
        };
        let number = entry.number;
        let said = match entry.state {
            LogState::Committing => "its decision to commit",
            LogState::Aborting => "its decision to abort",
            _ => "no decision",
        };
        let held = if entry.state == LogState::Preparing {
            "Whoever prepared it has held it"
        } else {
            "Product and Order have held it"
        };
        ctx.narrate(format!(
            "Coordinator restarts and finds {said} for rename #{number} of product {product} \
             (\"{old_name}\" → \"{new_name}\", v{version}) in its log. {held} prepared — in doubt, \
             locked — since before the crash; it now tells both to {}.",
            if commit {
                "commit"
            } else {
                "abort (presumed abort)"
            }
        ));
        if entry.state == LogState::Preparing {
            self.log_abort(product, number, &old_name, &new_name, version, ctx);
        }
        self.active.insert(
            product,
            Update {
                number,
                request: None,
                product,
                old_name,
                new_name,
                version,
                phase: Phase::Deciding {
                    commit,
                    legs: [RollbackLeg::new(), RollbackLeg::new()],
                },
            },
        );
        for index in 0..PARTICIPANT_NAMES.len() {
            self.send_rollback(product, index, ctx);
        }
    }

    /// Two-phase commit: records that update v of `product` is aborted — no read can have seen
    /// it, which the checker verifies — and logs the decision before anyone is told.
    fn log_abort(
        &mut self,
        product: u64,
        number: u64,
        old_name: &str,
        new_name: &str,
        version: u64,
        ctx: &mut Ctx<'_>,
    ) {
        ctx.record(Event::WriteAborted {
            service: ctx.me,
            source_service: self.config.product,
            source_table: PRODUCTS_TABLE.to_string(),
            key: product.to_string(),
            version,
        });
        let aborting = LogEntry {
            number,
            state: LogState::Aborting,
            from: Some(new_name.to_string()),
            to: old_name.to_string(),
        };
        ctx.write(
            RENAME_LOG_TABLE,
            &product.to_string(),
            &aborting.to_value(),
            version,
        );
    }

    fn receive_rename(&mut self, request: &Envelope, product: u64, name: &str, ctx: &mut Ctx<'_>) {
        if self.active.contains_key(&product) {
            if self.waiting.len() >= self.config.waiting_capacity {
                let reason = format!(
                    "the coordinator is busy: {} renames are already waiting",
                    self.waiting.len()
                );
                ctx.reply(request, Payload::Failed { reason });
                return;
            }
            let timer = ctx.set_timer(self.config.timeout);
            self.timers
                .insert(timer.key(), CoordinatorTimer::WaitedTooLong(request.id));
            self.waiting.push_back(Waiting {
                request: request.clone(),
                product,
                name: name.to_string(),
                timer,
            });
            return;
        }
        self.begin(request.clone(), product, name.to_string(), ctx);
    }

    fn begin(&mut self, request: Envelope, product: u64, new_name: String, ctx: &mut Ctx<'_>) {
        let key = product.to_string();
        let Some((row, entry)) = ctx
            .read(RENAME_LOG_TABLE, &key)
            .and_then(|row| LogEntry::parse(&row.value).map(|entry| (row, entry)))
        else {
            let reason = format!("no product {product}");
            ctx.reply(&request, Payload::Failed { reason });
            return;
        };
        self.renames_started += 1;
        let number = self.renames_started;
        let version = row.version + 1;
        let old_name = entry.to;
        let two_phase = self.config.protocol == Protocol::TwoPhaseCommit;
        let applying = LogEntry {
            number,
            state: if two_phase {
                LogState::Preparing
            } else {
                LogState::Applying
            },
            from: Some(old_name.clone()),
            to: new_name.clone(),
        };
        ctx.write(RENAME_LOG_TABLE, &key, &applying.to_value(), version);
        let apply = if two_phase {
            Payload::PrepareRename {
                product,
                name: new_name.clone(),
                version,
            }
        } else {
            Payload::ApplyRename {
                product,
                name: new_name.clone(),
                version,
            }
        };
        let to_product = ctx.send(
            self.config.product,
            apply.clone(),
            request.op,
            Some(request.id),
        );
        if self.config.crash_at_rename == Some(number) && !two_phase {
            ctx.narrate(format!(
                "Coordinator crashes after sending the rename of product {product} to Product and before \
                 sending it to Order: once Product applies it, product {product}'s name differs between the two."
            ));
            ctx.crash(self.config.restart_after);
            return;
        }
        let to_order = ctx.send(self.config.order, apply, request.op, Some(request.id));
        let timer = ctx.set_timer(self.config.timeout);
        self.timers
            .insert(timer.key(), CoordinatorTimer::ApplyTimeout(product));
        self.active.insert(
            product,
            Update {
                number,
                request: Some(request),
                product,
                old_name,
                new_name,
                version,
                phase: Phase::Applying {
                    calls: [to_product, to_order],
                    answers: [Answer::Waiting, Answer::Waiting],
                    timer,
                },
            },
        );
    }

    /// The product and participant whose update or rollback message `msg` is.
    fn find_call(&self, msg: MsgId) -> Option<(u64, usize)> {
        self.active.values().find_map(|update| {
            let index = match &update.phase {
                Phase::Applying { calls, .. } => calls.iter().position(|call| *call == msg),
                Phase::RollingBack { legs } => legs.iter().position(|leg| leg.msg == Some(msg)),
                Phase::Deciding { legs, .. } => legs
                    .iter()
                    .position(|leg| leg.msg == Some(msg) || leg.sent.contains(&msg)),
            }?;
            Some((update.product, index))
        })
    }

    /// True when `from` says it holds `product` at `version` or newer while the product's update
    /// is being rolled back at that version: the answer to any attempt of the rollback, also one
    /// that was retried after its timeout, since a rollback is the same whenever it lands.
    fn acks_rollback(&self, from: ServiceId, product: u64, version: u64) -> bool {
        let is_participant = from == self.config.product || from == self.config.order;
        self.active.get(&product).is_some_and(|update| {
            is_participant
                && matches!(update.phase, Phase::RollingBack { .. })
                && version > update.version
        })
    }

    fn on_answer(&mut self, product: u64, index: usize, answer: Answer, ctx: &mut Ctx<'_>) {
        let Some(update) = self.active.get_mut(&product) else {
            return;
        };
        match &mut update.phase {
            Phase::Applying { answers, .. } => {
                if answers[index] == Answer::Waiting {
                    answers[index] = answer;
                }
                let failed = answers
                    .iter()
                    .any(|a| matches!(a, Answer::Refused(_) | Answer::Down));
                let all_applied = answers.iter().all(|a| *a == Answer::Applied);
                if failed {
                    self.fail(product, false, ctx);
                } else if all_applied && self.config.protocol == Protocol::TwoPhaseCommit {
                    self.decide_commit(product, ctx);
                } else if all_applied {
                    self.succeed(product, ctx);
                }
            }
            Phase::RollingBack { .. } | Phase::Deciding { .. } => match answer {
                Answer::Down => self.retry_rollback_later(product, index, true, ctx),
                _ => self.rollback_landed(product, index, ctx),
            },
        }
    }

    fn succeed(&mut self, product: u64, ctx: &mut Ctx<'_>) {
        let Some(update) = self.active.get(&product) else {
            return;
        };
        if let Phase::Applying { timer, .. } = update.phase {
            self.timers.remove(&timer.key());
        }
        let done = LogEntry {
            number: update.number,
            state: LogState::Done,
            from: None,
            to: update.new_name.clone(),
        };
        ctx.write(
            RENAME_LOG_TABLE,
            &product.to_string(),
            &done.to_value(),
            update.version,
        );
        if let Some(request) = &update.request {
            ctx.reply(
                request,
                Payload::Renamed {
                    product,
                    version: update.version,
                },
            );
        }
        if !self.narrated_success {
            self.narrated_success = true;
            let text = if self.config.protocol == Protocol::TwoPhaseCommit {
                format!(
                    "Coordinator: Product and Order both committed the rename of product {product}. Only now \
                     does the user get success — after two round trips: prepare, then commit."
                )
            } else {
                format!(
                    "Coordinator: Product and Order both applied the rename of product {product}. Only now does \
                     the user get success — after the slower of the two round trips."
                )
            };
            ctx.narrate(text);
        }
        self.finish(product, ctx);
    }

    /// Rolls the update back at both services and tells the client it failed: at once when a
    /// service refused or is down, or when the wait for answers `timed_out`.
    fn fail(&mut self, product: u64, timed_out: bool, ctx: &mut Ctx<'_>) {
        let Some(update) = self.active.get_mut(&product) else {
            return;
        };
        let Phase::Applying { answers, timer, .. } = &update.phase else {
            return;
        };
        self.timers.remove(&timer.key());
        let timeout = self.config.timeout;
        let two_phase = self.config.protocol == Protocol::TwoPhaseCommit;
        let said: Vec<String> = answers
            .iter()
            .zip(PARTICIPANT_NAMES)
            .map(|(answer, name)| match answer {
                Answer::Applied if two_phase => format!("{name} voted yes"),
                Answer::Applied => format!("{name} applied it"),
                Answer::Refused(reason) => format!("{name} {reason}"),
                Answer::Down => format!("{name} is down"),
                Answer::Waiting if timed_out => format!("{name} did not answer within {timeout}"),
                Answer::Waiting => format!("{name} had not answered yet"),
            })
            .collect();
        // The user hears the cause: a refusal or an outage first, else the silence.
        let reason = [true, false]
            .into_iter()
            .find_map(|cause_only| {
                answers.iter().zip(&said).find(|(answer, _)| match answer {
                    Answer::Refused(_) | Answer::Down => true,
                    Answer::Waiting => !cause_only,
                    Answer::Applied => false,
                })
            })
            .map_or_else(String::new, |(_, said)| said.clone());
        if self.config.protocol == Protocol::TwoPhaseCommit {
            self.decide_abort(product, said.join(", "), reason, ctx);
            return;
        }
        let rollback_version = update.version + 1;
        ctx.narrate(format!(
            "Coordinator: for the rename of product {product}, {} — rolling back: both are told to hold \
             \"{}\" again, as v{rollback_version}, and the user gets a failure.",
            said.join(", "),
            update.old_name
        ));
        ctx.record(Event::WriteAborted {
            service: ctx.me,
            source_service: self.config.product,
            source_table: PRODUCTS_TABLE.to_string(),
            key: product.to_string(),
            version: update.version,
        });
        let rolling_back = LogEntry {
            number: update.number,
            state: LogState::RollingBack,
            from: Some(update.new_name.clone()),
            to: update.old_name.clone(),
        };
        ctx.write(
            RENAME_LOG_TABLE,
            &product.to_string(),
            &rolling_back.to_value(),
            rollback_version,
        );
        if let Some(request) = &update.request {
            ctx.reply(
                request,
                Payload::Failed {
                    reason: format!("{reason}; rolled back"),
                },
            );
        }
        update.phase = Phase::RollingBack {
            legs: [RollbackLeg::new(), RollbackLeg::new()],
        };
        for index in 0..PARTICIPANT_NAMES.len() {
            self.send_rollback(product, index, ctx);
        }
    }

    /// Sends participant `index` the rollback, or under two-phase commit the decision (commit or
    /// abort), and waits one timeout for its answer.
    fn send_rollback(&mut self, product: u64, index: usize, ctx: &mut Ctx<'_>) {
        let to = self.participant(index);
        let Some(update) = self.active.get_mut(&product) else {
            return;
        };
        let deciding = matches!(update.phase, Phase::Deciding { .. });
        let op = update.request.as_ref().and_then(|request| request.op);
        let (payload, legs) = match &mut update.phase {
            Phase::RollingBack { legs } => (
                Payload::RollBackRename {
                    product,
                    name: update.old_name.clone(),
                    version: update.version + 1,
                },
                legs,
            ),
            Phase::Deciding { commit: true, legs } => (
                Payload::CommitRename {
                    product,
                    name: update.new_name.clone(),
                    version: update.version,
                },
                legs,
            ),
            Phase::Deciding {
                commit: false,
                legs,
            } => (
                Payload::AbortRename {
                    product,
                    name: update.new_name.clone(),
                    version: update.version,
                },
                legs,
            ),
            Phase::Applying { .. } => return,
        };
        let msg = ctx.send(to, payload, op, None);
        let timer = ctx.set_timer(self.config.timeout);
        let leg = &mut legs[index];
        self.timers.remove(&leg.timer.key());
        self.timers
            .insert(timer.key(), CoordinatorTimer::Rollback(product, index));
        leg.msg = Some(msg);
        leg.timer = timer;
        leg.attempts += 1;
        if deciding {
            leg.sent.push(msg);
        }
    }

    /// A rollback attempt was refused (`down`) or not answered in time: the next attempt goes
    /// out after a backoff. An answer to any attempt still lands the rollback meanwhile.
    fn retry_rollback_later(&mut self, product: u64, index: usize, down: bool, ctx: &mut Ctx<'_>) {
        let Some(update) = self.active.get_mut(&product) else {
            return;
        };
        let (what, legs) = match &mut update.phase {
            Phase::RollingBack { legs } => ("rollback", legs),
            Phase::Deciding { commit: true, legs } => ("commit", legs),
            Phase::Deciding { legs, .. } => ("abort", legs),
            Phase::Applying { .. } => return,
        };
        let leg = &mut legs[index];
        if down && !leg.found_down {
            leg.found_down = true;
            ctx.narrate(format!(
                "Coordinator: {} is down, so its {what} of product {product} cannot land yet. The \
                 coordinator retries, further apart each time, until it does, and holds further \
                 renames of product {product} until then.",
                PARTICIPANT_NAMES[index]
            ));
        }
        leg.msg = None;
        self.timers.remove(&leg.timer.key());
        let wait = rollback_backoff(leg.attempts, ctx.rng);
        leg.timer = ctx.set_timer(wait);
        self.timers
            .insert(leg.timer.key(), CoordinatorTimer::Rollback(product, index));
    }

    /// A rollback's timer fired: its answer timed out, or its retry is due.
    fn rollback_timer(&mut self, product: u64, index: usize, ctx: &mut Ctx<'_>) {
        let awaiting_answer = self.active.get(&product).is_some_and(|update| {
            matches!(&update.phase, Phase::RollingBack { legs } | Phase::Deciding { legs, .. }
                if legs[index].msg.is_some())
        });
        if awaiting_answer {
            self.retry_rollback_later(product, index, false, ctx);
        } else {
            self.send_rollback(product, index, ctx);
        }
    }

    fn rollback_landed(&mut self, product: u64, index: usize, ctx: &mut Ctx<'_>) {
        let Some(update) = self.active.get_mut(&product) else {
            return;
        };
        let (decision, legs) = match &mut update.phase {
            Phase::RollingBack { legs } => (None, legs),
            Phase::Deciding { commit, legs } => (Some(*commit), legs),
            Phase::Applying { .. } => return,
        };
        if legs[index].done {
            return;
        }
        legs[index].done = true;
        legs[index].msg = None;
        self.timers.remove(&legs[index].timer.key());
        if !legs.iter().all(|leg| leg.done) {
            return;
        }
        match decision {
            Some(true) => return self.succeed(product, ctx),
            Some(false) => return self.aborted(product, ctx),
            None => {}
        }
        if legs.iter().any(|leg| leg.found_down) {
            ctx.narrate(format!(
                "Coordinator: the rollback of product {product} has finally landed at both services."
            ));
        }
        let rolled_back = LogEntry {
            number: update.number,
            state: LogState::RolledBack,
            from: None,
            to: update.old_name.clone(),
        };
        ctx.write(
            RENAME_LOG_TABLE,
            &product.to_string(),
            &rolled_back.to_value(),
            update.version + 1,
        );
        self.finish(product, ctx);
    }

    /// Two-phase commit: both voted yes. The decision is logged before anyone hears it, so a
    /// crash after this line still commits (on restart); then both are told to commit.
    fn decide_commit(&mut self, product: u64, ctx: &mut Ctx<'_>) {
        let Some(update) = self.active.get_mut(&product) else {
            return;
        };
        if let Phase::Applying { timer, .. } = update.phase {
            self.timers.remove(&timer.key());
        }
        let committing = LogEntry {
            number: update.number,
            state: LogState::Committing,
            from: Some(update.old_name.clone()),
            to: update.new_name.clone(),
        };
        ctx.write(
            RENAME_LOG_TABLE,
            &product.to_string(),
            &committing.to_value(),
            update.version,
        );
        let number = update.number;
        let crashes = self.config.crash_at_rename == Some(number);
        if crashes || !self.narrated_decision {
            self.narrated_decision = true;
            ctx.narrate(format!(
                "Coordinator decided commit for rename #{number} of product {product}, logged: Product \
                 and Order both voted yes and hold \"{}\" prepared, still serving \"{}\".",
                update.new_name, update.old_name
            ));
        }
        if crashes {
            self.crash_after_deciding("commit", product, ctx);
            return;
        }
        update.phase = Phase::Deciding {
            commit: true,
            legs: [RollbackLeg::new(), RollbackLeg::new()],
        };
        for index in 0..PARTICIPANT_NAMES.len() {
            self.send_rollback(product, index, ctx);
        }
    }

    /// Two-phase commit: the crash of `crash_at_rename`, after logging the decision and before
    /// telling anyone, the user included.
    fn crash_after_deciding(&self, decision: &str, product: u64, ctx: &mut Ctx<'_>) {
        ctx.narrate(format!(
            "Coordinator crashes after logging its decision to {decision} and before telling anyone: \
             whoever prepared product {product} holds it in doubt, locked, until the coordinator \
             restarts and sends the decision again."
        ));
        ctx.crash(self.config.restart_after);
    }

    /// Two-phase commit: a participant voted no, is down or did not answer in time. The abort is
    /// logged, the user told, both are told to abort; their committed names never changed.
    fn decide_abort(&mut self, product: u64, said: String, reason: String, ctx: &mut Ctx<'_>) {
        let Some(update) = self.active.get(&product) else {
            return;
        };
        let (number, old_name, new_name, version) = (
            update.number,
            update.old_name.clone(),
            update.new_name.clone(),
            update.version,
        );
        ctx.narrate(format!(
            "Coordinator decided abort for the rename of product {product}, logged: {said}. Both are \
             told to drop \"{new_name}\"; readers only ever saw \"{old_name}\". The user gets a failure."
        ));
        self.log_abort(product, number, &old_name, &new_name, version, ctx);
        if self.config.crash_at_rename == Some(number) {
            self.crash_after_deciding("abort", product, ctx);
            return;
        }
        let Some(update) = self.active.get_mut(&product) else {
            return;
        };
        if let Some(request) = &update.request {
            ctx.reply(
                request,
                Payload::Failed {
                    reason: format!("{reason}; aborted"),
                },
            );
        }
        update.phase = Phase::Deciding {
            commit: false,
            legs: [RollbackLeg::new(), RollbackLeg::new()],
        };
        for index in 0..PARTICIPANT_NAMES.len() {
            self.send_rollback(product, index, ctx);
        }
    }

    /// Two-phase commit: both acknowledged the abort.
    fn aborted(&mut self, product: u64, ctx: &mut Ctx<'_>) {
        let Some(update) = self.active.get(&product) else {
            return;
        };
        let aborted = LogEntry {
            number: update.number,
            state: LogState::Aborted,
            from: None,
            to: update.old_name.clone(),
        };
        ctx.write(
            RENAME_LOG_TABLE,
            &product.to_string(),
            &aborted.to_value(),
            update.version,
        );
        self.finish(product, ctx);
    }

    /// Ends the product's update and starts the next rename waiting for it.
    fn finish(&mut self, product: u64, ctx: &mut Ctx<'_>) {
        self.active.remove(&product);
        let Some(at) = self.waiting.iter().position(|w| w.product == product) else {
            return;
        };
        if let Some(next) = self.waiting.remove(at) {
            self.timers.remove(&next.timer.key());
            self.begin(next.request, product, next.name, ctx);
        }
    }

    /// Refuses a rename that has waited a whole timeout, so its client hears why before it gives
    /// up, and the rename is never applied behind its back after that.
    fn waited_too_long(&mut self, request: MsgId, ctx: &mut Ctx<'_>) {
        let Some(at) = self.waiting.iter().position(|w| w.request.id == request) else {
            return;
        };
        if let Some(waiting) = self.waiting.remove(at) {
            let reason = format!(
                "waited more than {} behind another rename of product {}",
                self.config.timeout, waiting.product
            );
            ctx.reply(&waiting.request, Payload::Failed { reason });
        }
    }

    fn on_timer(&mut self, timer: TimerId, ctx: &mut Ctx<'_>) {
        match self.timers.remove(&timer.key()) {
            Some(CoordinatorTimer::ApplyTimeout(product)) => self.fail(product, true, ctx),
            Some(CoordinatorTimer::Rollback(product, index)) => {
                self.rollback_timer(product, index, ctx)
            }
            Some(CoordinatorTimer::WaitedTooLong(request)) => self.waited_too_long(request, ctx),
            None => {}
        }
    }
}

impl Service for Coordinator {
    fn handle(&mut self, input: Input<'_>, ctx: &mut Ctx<'_>) {
        match input {
            Input::Start => self.recover(ctx),
            Input::Message(message) => match &message.payload {
                Payload::RenameProduct { product, name } => {
                    self.receive_rename(message, *product, name, ctx)
                }
                Payload::Renamed { product, version }
                    if self.acks_rollback(message.from, *product, *version) =>
                {
                    let index = usize::from(message.from != self.config.product);
                    self.rollback_landed(*product, index, ctx);
                }
                Payload::Renamed { .. } | Payload::Failed { .. } => {
                    let Some((product, index)) = message.caused_by.and_then(|m| self.find_call(m))
                    else {
                        return; // An answer after its timeout: the update already failed.
                    };
                    let answer = match &message.payload {
                        Payload::Failed { reason } => Answer::Refused(reason.clone()),
                        _ => Answer::Applied,
                    };
                    self.on_answer(product, index, answer, ctx);
                }
                _ => {}
            },
            Input::Timer(timer) => self.on_timer(timer, ctx),
            Input::Refused(msg) => {
                if let Some((product, index)) = self.find_call(msg) {
                    self.on_answer(product, index, Answer::Down, ctx);
                }
            }
            // Only a broker watches its peers' connections.
            Input::ConnectionLost(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_entries_read_back_as_written() {
        let check = |entry: LogEntry, text: &str| {
            assert_eq!(entry.to_value(), text);
            assert_eq!(LogEntry::parse(text), Some(entry));
        };
        check(LogEntry::initial("Oak Chair"), "#0 done: Oak Chair");
        check(
            LogEntry {
                number: 12,
                state: LogState::RollingBack,
                from: Some("Smart Oak Chair".into()),
                to: "Oak Chair".into(),
            },
            "#12 rolling back: Smart Oak Chair → Oak Chair",
        );
        check(
            LogEntry {
                number: 3,
                state: LogState::Partial,
                from: Some("Desk Lamp".into()),
                to: "Eco Desk Lamp".into(),
            },
            "#3 PARTIAL: Desk Lamp → Eco Desk Lamp",
        );
        for bad in ["", "done: x", "#x done: y", "#1 finished: y", "#1 done"] {
            assert_eq!(LogEntry::parse(bad), None, "{bad:?}");
        }
    }
}
