//! Directives: fetch, write, copy, swap, invoke, process-dependency and unlink. Every
//! change of contents goes through [`Run::put`].

use alloc::vec::Vec;

use crate::command::{Directive, param};
use crate::error::SuitError;
use crate::model::ComponentId;
use crate::report::Record;

use super::outcome::{Flow, Invocation, hard};
use super::run::{Procedure, Run};
use super::sequence::Frame;

impl Run<'_, '_> {
    /// Carries out `d` on component `index`; `at` is the command's record (what a
    /// dependency component filled here is marked with until it is processed).
    pub(super) fn directive(
        &mut self,
        frame: &Frame<'_, '_>,
        d: Directive,
        index: u64,
        at: &Record,
    ) -> Flow {
        let ctx = frame.ctx;
        let plain = |e: SuitError| hard(e, Record::default());
        let id = ctx.component_id(index).map_err(plain)?;
        match d {
            Directive::Fetch => {
                let uri = self.param(&id, param::URI, |p| &p.uri).map_err(plain)?;
                let bytes = match ctx.auth.envelope.integrated(&uri) {
                    Some(b) => b.to_vec(),
                    None => self.p.fetcher.fetch(&uri).map_err(|reason| {
                        plain(SuitError::Fetch {
                            uri: uri.clone(),
                            reason,
                        })
                    })?,
                };
                self.put(ctx, index, bytes, at).map_err(plain)
            }
            Directive::Write => {
                let content = self
                    .param(&id, param::CONTENT, |p| &p.content)
                    .map_err(plain)?;
                let bytes = self.maybe_decrypt(&id, content).map_err(plain)?;
                self.put(ctx, index, bytes, at).map_err(plain)
            }
            Directive::Copy | Directive::Swap => {
                let source = self
                    .param(&id, param::SOURCE_COMPONENT, |p| &p.source_component)
                    .map_err(plain)?;
                let source_id = ctx.component_id(source).map_err(plain)?;
                let data = self.source(ctx, &source_id).map_err(plain)?;
                if d == Directive::Copy {
                    let bytes = self.maybe_decrypt(&id, data).map_err(plain)?;
                    self.put(ctx, index, bytes, at).map_err(plain)
                } else {
                    let current = self.source(ctx, &id).map_err(plain)?;
                    self.put(ctx, index, data, at).map_err(plain)?;
                    self.put(ctx, source, current, at).map_err(plain)
                }
            }
            Directive::Invoke => {
                let args = self.params.get(&id).and_then(|p| p.invoke_args.clone());
                self.invocations.push(Invocation {
                    component: id,
                    args,
                });
                Ok(())
            }
            Directive::ProcessDependency => {
                if !ctx.is_dependency(index) {
                    return Err(plain(SuitError::NotADependency(index)));
                }
                let path = ctx.dependency_path(index);
                if self.procedure == Procedure::Uninstall {
                    self.release(&id, &ctx.owner, &path, frame.depth)
                } else {
                    self.process_dependency(frame, &id, path)
                }
            }
            Directive::Unlink => {
                if ctx.is_dependency(index) {
                    let path = ctx.dependency_path(index);
                    self.release(&id, &ctx.owner, &path, frame.depth)
                } else {
                    self.unlink_image(&id, &ctx.owner).map_err(plain)
                }
            }
        }
    }

    /// Content decrypted when an encryption-info is set for `id`, else as it is.
    fn maybe_decrypt(&self, id: &ComponentId, data: Vec<u8>) -> Result<Vec<u8>, SuitError> {
        match self.params.get(id).and_then(|p| p.encryption_info.as_ref()) {
            None => Ok(data),
            Some(info) => self
                .p
                .decryptor
                .ok_or(SuitError::NoDecryptor)?
                .decrypt(info, &data),
        }
    }
}
