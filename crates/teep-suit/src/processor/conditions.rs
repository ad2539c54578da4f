//! Conditions: side-effect free checks of parameters against the device and components.

use crate::cbor::ct_eq;
use crate::command::{Condition, Parameters, param};
use crate::error::SuitError;
use crate::model::{ComponentId, Digest, Envelope};

use super::ctx::Ctx;
use super::run::Run;

/// Result of a condition, with the measured values a report may carry.
pub(super) enum Check {
    Pass(Parameters),
    Fail(SuitError, Parameters),
}

impl Run<'_, '_> {
    /// Evaluates `c` on component `index`. `Err` aborts whatever the soft-failure setting
    /// (the component is not addressable, or a dependency fails its integrity check).
    pub(super) fn condition(
        &mut self,
        ctx: &Ctx<'_>,
        c: Condition,
        index: u64,
    ) -> Result<Check, SuitError> {
        let id = ctx.component_id(index)?;
        let device = self.p.device;
        let fail = |e| Ok(Check::Fail(e, Parameters::default()));
        let failed = SuitError::ConditionFailed {
            condition: c.number(),
        };
        let pass = Ok(Check::Pass(Parameters::default()));
        match c {
            Condition::VendorIdentifier => {
                match self.param(&id, param::VENDOR_ID, |p| &p.vendor_id) {
                    Ok(v) if device.vendor_ids.contains(&v) => pass,
                    Ok(_) => fail(failed),
                    Err(e) => fail(e),
                }
            }
            Condition::ClassIdentifier => match self.param(&id, param::CLASS_ID, |p| &p.class_id) {
                Ok(v) if device.class_ids.contains(&v) => pass,
                Ok(_) => fail(failed),
                Err(e) => fail(e),
            },
            Condition::DeviceIdentifier => {
                match self.param(&id, param::DEVICE_ID, |p| &p.device_id) {
                    Ok(v) if device.device_ids.contains(&v) => pass,
                    Ok(_) => fail(failed),
                    Err(e) => fail(e),
                }
            }
            Condition::ComponentSlot => {
                match self.param(&id, param::COMPONENT_SLOT, |p| &p.component_slot) {
                    Ok(slot) => {
                        let actual = device.slots.iter().find(|(c, _)| *c == id).map(|(_, s)| *s);
                        if actual == Some(slot) {
                            pass
                        } else {
                            let measured = Parameters {
                                component_slot: actual,
                                ..Parameters::default()
                            };
                            Ok(Check::Fail(failed, measured))
                        }
                    }
                    Err(e) => fail(e),
                }
            }
            Condition::ImageMatch => {
                let expected = match self.param(&id, param::IMAGE_DIGEST, |p| &p.image_digest) {
                    Ok(d) => d,
                    Err(e) => return fail(e),
                };
                if ctx.is_dependency(index) {
                    return self.dependency_digest_check(&id, &expected, failed);
                }
                self.image_match(id, &expected, failed)
            }
            Condition::CheckContent => {
                let expected = match self.param(&id, param::CONTENT, |p| &p.content) {
                    Ok(c) => c,
                    Err(e) => return fail(e),
                };
                match self.data(&id)? {
                    Some(data) if ct_eq(&data, &expected) => pass,
                    _ => fail(failed),
                }
            }
            Condition::DependencyIntegrity => {
                if !ctx.is_dependency(index) {
                    return Err(SuitError::NotADependency(index));
                }
                // Any failure aborts: the dependency cannot be trusted at all.
                self.verify_dependency(&id)?;
                pass
            }
            Condition::IsDependency => {
                if ctx.is_dependency(index) {
                    pass
                } else {
                    fail(failed)
                }
            }
            Condition::Abort => fail(failed),
        }
    }

    /// image-match on an image: digest (cached until the component is written) and, when
    /// set, size.
    fn image_match(
        &mut self,
        id: ComponentId,
        expected: &Digest,
        failed: SuitError,
    ) -> Result<Check, SuitError> {
        let Some(data) = self.data(&id)? else {
            return Ok(Check::Fail(
                SuitError::ComponentEmpty(id),
                Parameters::default(),
            ));
        };
        let size = data.len() as u64;
        let digest = match self.digests.get(&id) {
            Some(d) => *d,
            None => self.p.provider.sha256(&data),
        };
        drop(data);
        let size_ok = self
            .params
            .get(&id)
            .and_then(|p| p.image_size)
            .is_none_or(|s| s == size);
        self.digests.insert(id, digest);
        let measured = Parameters {
            image_digest: Some(Digest::sha256(digest)),
            image_size: Some(size),
            ..Parameters::default()
        };
        if expected.matches_sha256(&digest)? && size_ok {
            Ok(Check::Pass(measured))
        } else {
            Ok(Check::Fail(failed, measured))
        }
    }

    /// image-match on a dependency: its manifest digest (not the envelope bytes).
    fn dependency_digest_check(
        &self,
        id: &ComponentId,
        expected: &Digest,
        failed: SuitError,
    ) -> Result<Check, SuitError> {
        let Some(data) = self.data(id)? else {
            return Ok(Check::Fail(
                SuitError::ComponentEmpty(id.clone()),
                Parameters::default(),
            ));
        };
        let envelope = match Envelope::decode(&data) {
            Ok(e) => e,
            Err(e) => return Ok(Check::Fail(e, Parameters::default())),
        };
        let digest = self.p.provider.sha256(envelope.manifest_bstr);
        let measured = Parameters {
            image_digest: Some(Digest::sha256(digest)),
            ..Parameters::default()
        };
        if expected.matches_sha256(&digest)? {
            Ok(Check::Pass(measured))
        } else {
            Ok(Check::Fail(failed, measured))
        }
    }
}
