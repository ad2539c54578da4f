//! The sequence runner: sections, command sequences and their steps, with the frame each
//! sequence runs in (its manifest, section and depth) and the reporting policy.

use crate::command::{Command, IndexArg, Nested, Parameters, Step, parse_sequence};
use crate::error::SuitError;
use crate::model::Section;
use crate::report::{Entry, Record, SystemProperties};
use crate::verify::section_bytes;

use super::conditions::Check;
use super::ctx::Ctx;
use super::outcome::{Flow, Stop, hard};
use super::run::{Procedure, Run};

/// Nesting depth over sequences and manifests. It is a value each frame carries, one
/// level below its parent's: leaving a level (on any path) needs no bookkeeping.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Depth(usize);

impl Depth {
    /// One level deeper, or `TooDeep` beyond `max` levels.
    pub(super) fn enter(self, max: usize, at: &Record) -> Result<Self, Stop> {
        if self.0 >= max {
            return Err(hard(SuitError::TooDeep, at.clone()));
        }
        Ok(Self(self.0 + 1))
    }
}

/// Where a sequence runs.
#[derive(Clone, Copy)]
pub(super) struct Frame<'f, 'a> {
    pub ctx: &'f Ctx<'a>,
    /// Where the bytes sit (for records): `Shared` or the section itself.
    pub section: Section,
    /// The section being executed (process-dependency runs its dependency's namesake).
    pub procedure: Section,
    /// Inside try-each or run-sequence: the only places soft-failure may be set.
    pub nested: bool,
    pub depth: Depth,
}

impl Frame<'_, '_> {
    fn record(&self, offset: usize, index: u64) -> Record {
        self.ctx.record(self.section, offset, index)
    }
}

/// The state a sequence's commands change: component index and soft-failure.
struct Cursor {
    index: IndexArg,
    soft: bool,
}

impl Run<'_, '_> {
    /// Runs the shared sequence and then `section`, if the manifest has that section, with
    /// the manifest at `depth`.
    pub(super) fn run_section(&mut self, ctx: &Ctx<'_>, section: Section, depth: Depth) -> Flow {
        let bytes = section_bytes(&ctx.auth, section, self.p.provider)
            .map_err(|e| hard(e, ctx.record(section, 0, 0)))?;
        let Some(bytes) = bytes else {
            return Ok(());
        };
        let mut frame = Frame {
            ctx,
            section: Section::Shared,
            procedure: section,
            nested: false,
            depth,
        };
        if let Some(shared) = ctx.auth.manifest.common.shared_sequence {
            self.run_sequence(
                &frame,
                Nested {
                    bytes: shared,
                    offset: 0,
                },
                0,
                false,
            )?;
        }
        frame.section = section;
        self.run_sequence(&frame, Nested { bytes, offset: 0 }, 0, false)?;
        if self.procedure == Procedure::Update {
            self.check_lockstep(ctx, section)
                .map_err(|e| hard(e, ctx.record(section, bytes.len(), 0)))?;
        }
        Ok(())
    }

    /// Runs one command sequence a level below `outer` (`body.offset` places it in its
    /// section), starting at component `start` with soft-failure `soft`.
    fn run_sequence(
        &mut self,
        outer: &Frame<'_, '_>,
        body: Nested<'_>,
        start: u64,
        soft: bool,
    ) -> Flow {
        let at = outer.record(body.offset, start);
        let frame = Frame {
            depth: outer.depth.enter(self.p.policy.max_depth, &at)?,
            ..*outer
        };
        let steps = parse_sequence(body.bytes, body.offset).map_err(|e| hard(e, at))?;
        let mut cursor = Cursor {
            index: IndexArg::One(start),
            soft,
        };
        for step in &steps {
            if frame.section == Section::Shared && !step.command.allowed_in_shared() {
                return Err(hard(
                    SuitError::NotAllowedInShared(step.command.number()),
                    frame.record(step.offset, 0),
                ));
            }
            self.step(&frame, step, &mut cursor)?;
        }
        Ok(())
    }

    fn step(&mut self, frame: &Frame<'_, '_>, step: &Step<'_>, cursor: &mut Cursor) -> Flow {
        let ctx = frame.ctx;
        let at = |i: u64| frame.record(step.offset, i);
        match &step.command {
            Command::SetComponentIndex(arg) => {
                let space = ctx.index_space();
                let bad = match arg {
                    IndexArg::One(i) => (*i >= space).then_some(*i),
                    IndexArg::All => None,
                    IndexArg::List(v) => v.iter().copied().find(|i| *i >= space),
                };
                if let Some(i) = bad {
                    return Err(hard(SuitError::ComponentIndexOutOfRange(i), at(i)));
                }
                cursor.index = arg.clone();
                Ok(())
            }
            Command::OverrideParameters(p) | Command::SetParameters(p) => {
                if let Some(value) = p.soft_failure {
                    if !frame.nested {
                        return Err(hard(SuitError::SoftFailureNotAllowed, at(0)));
                    }
                    cursor.soft = value;
                }
                let overwrite = matches!(step.command, Command::OverrideParameters(_));
                for i in ctx.targets(&cursor.index) {
                    let id = ctx.component_id(i).map_err(|e| hard(e, at(i)))?;
                    self.params.entry(id).or_default().merge(p, overwrite);
                }
                Ok(())
            }
            Command::TryEach(branches, empty_ok) => {
                let inner = Frame {
                    nested: true,
                    ..*frame
                };
                for i in ctx.targets(&cursor.index) {
                    let mut done = false;
                    for b in branches {
                        match self.run_sequence(&inner, *b, i, true) {
                            Ok(()) => {
                                done = true;
                                break;
                            }
                            Err(Stop::Soft) => {}
                            Err(hard) => return Err(hard),
                        }
                    }
                    if !done && !empty_ok {
                        return condition_failed(SuitError::TryEachExhausted, at(i), cursor.soft);
                    }
                }
                Ok(())
            }
            Command::RunSequence(n) => {
                let inner = Frame {
                    nested: true,
                    ..*frame
                };
                for i in ctx.targets(&cursor.index) {
                    match self.run_sequence(&inner, *n, i, false) {
                        Ok(()) | Err(Stop::Soft) => {}
                        Err(hard) => return Err(hard),
                    }
                }
                Ok(())
            }
            Command::Condition(c, policy) => {
                for i in ctx.targets(&cursor.index) {
                    let check = self.condition(ctx, *c, i).map_err(|e| hard(e, at(i)))?;
                    let (error, measured) = match check {
                        Check::Pass(measured) => (None, measured),
                        Check::Fail(error, measured) => (Some(error), measured),
                    };
                    let mut rec = at(i);
                    rec.properties = measured;
                    self.report(ctx, *policy, error.is_none(), rec.clone());
                    if let Some(error) = error {
                        return condition_failed(error, rec, cursor.soft);
                    }
                }
                Ok(())
            }
            Command::Directive(d, policy) => {
                for i in ctx.targets(&cursor.index) {
                    match self.directive(frame, *d, i, &at(i)) {
                        Ok(()) => self.report(ctx, *policy, true, at(i)),
                        Err(Stop::Hard(mut f)) => {
                            // Errors from nested manifests keep their own location.
                            if f.record == Record::default() {
                                f.record = at(i);
                            }
                            self.report(ctx, *policy, false, at(i));
                            return Err(Stop::Hard(f));
                        }
                        Err(Stop::Soft) => return Err(Stop::Soft),
                    }
                }
                Ok(())
            }
        }
    }

    /// Appends records as the reporting policy asks: bit 0/1 a record on success/failure,
    /// bit 2/3 the component's measured properties (`rec.properties`) on success/failure.
    fn report(&mut self, ctx: &Ctx<'_>, policy: u64, success: bool, rec: Record) {
        let (record_bit, sysinfo_bit) = if success { (1, 4) } else { (2, 8) };
        if policy & sysinfo_bit != 0
            && rec.properties != Parameters::default()
            && let Ok(component) = ctx.component_id(rec.component_index)
        {
            self.records.push(Entry::System(SystemProperties {
                component,
                properties: rec.properties.clone(),
            }));
        }
        if policy & record_bit != 0 {
            self.records.push(Entry::Record(rec));
        }
    }
}

/// A failed condition: a quiet stop under soft-failure, else a hard failure at `rec`.
fn condition_failed(error: SuitError, rec: Record, soft: bool) -> Flow {
    if soft {
        Err(Stop::Soft)
    } else {
        Err(hard(error, rec))
    }
}
