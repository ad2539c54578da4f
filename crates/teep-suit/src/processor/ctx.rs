//! The manifest being executed: its authenticated contents, report path, owner and
//! signer, and what its indices address.

use alloc::vec;
use alloc::vec::Vec;

use crate::command::{IndexArg, Parameters};
use crate::error::SuitError;
use crate::model::{ComponentId, Section};
use crate::report::Record;
use crate::trust::SignerId;
use crate::verify::Authenticated;

/// One manifest being executed (the root or a dependency).
pub(super) struct Ctx<'a> {
    pub auth: Authenticated<'a>,
    /// Position from the root, as report records name it (`[]` = the root).
    pub path: Vec<u64>,
    /// Where this manifest is stored; the owner of what it writes.
    pub owner: ComponentId,
    /// The anchor that authenticated it.
    pub signer: SignerId,
}

impl Ctx<'_> {
    pub(super) fn index_space(&self) -> u64 {
        self.auth.manifest.common.index_space() as u64
    }

    pub(super) fn component_id(&self, index: u64) -> Result<ComponentId, SuitError> {
        self.auth
            .manifest
            .common
            .component_id(index)
            .ok_or(SuitError::ComponentIndexOutOfRange(index))
    }

    pub(super) fn is_dependency(&self, index: u64) -> bool {
        self.auth.manifest.common.dependency(index).is_some()
    }

    /// A dependency's position among the manifest's dependencies (ascending index): the
    /// step it adds to a report record's `manifest-id` path (`[1, 0]` = the first
    /// dependency of the root's second dependency).
    pub(super) fn dependency_path(&self, index: u64) -> Vec<u64> {
        let ordinal = self
            .auth
            .manifest
            .common
            .dependencies
            .iter()
            .filter(|d| d.index < index)
            .count() as u64;
        let mut path = self.path.clone();
        path.push(ordinal);
        path
    }

    /// A report record for a command of this manifest.
    pub(super) fn record(&self, section: Section, offset: usize, index: u64) -> Record {
        Record {
            manifest_id: self.path.clone(),
            section: section.key(),
            offset: offset as u64,
            component_index: index,
            properties: Parameters::default(),
        }
    }

    /// The component indices a command applies to.
    pub(super) fn targets(&self, index: &IndexArg) -> Vec<u64> {
        match index {
            IndexArg::One(i) => vec![*i],
            IndexArg::All => (0..self.index_space()).collect(),
            IndexArg::List(v) => v.clone(),
        }
    }
}
