//! One module per command group; each returns the exit status.

pub mod admin;
pub mod backup;
pub mod cron;
pub mod enqueue;
pub mod jobs;
pub mod maintain;
pub mod prune;
pub mod serve;
mod sqlite_copy;
pub mod stats;
pub mod worker;
pub mod workflow;

use std::sync::Arc;

use quern::{Backend, Codec};

use crate::error::CliResult;
use crate::output::Out;
use crate::settings::Settings;
use crate::store::{self, Open, StoreOptions};

/// What every command gets: the merged settings and the output mode.
#[derive(Debug)]
pub struct Ctx {
    pub settings: Settings,
    pub out: Out,
}

impl Ctx {
    /// Opens the configured store.
    pub async fn open(&self, mode: Open) -> CliResult<Arc<dyn Backend>> {
        store::open_store(self.settings.store_url(), mode, self.store_options()).await
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            max_payload_bytes: self.settings.max_payload_bytes,
            redis_max_memory: self.settings.redis.max_memory_bytes(),
        }
    }

    /// How payloads are encoded, with the configured size limit.
    pub fn codec(&self) -> Codec {
        Codec {
            max_bytes: self.settings.max_payload_bytes,
            ..Codec::default()
        }
    }
}
