//! The engine's store as the service uses it: a build's number and folder are claimed when it
//! is accepted (the engine gets that place when the build leaves the queue), and every record
//! saved keeps the build's real acceptance time (see [`Build::accepted_at`]).

use crate::lock;
use localbuild_engine::record::{Build, BuildBatch};
use localbuild_engine::store::{BatchPlace, Place, Store, StoreError};
use localbuild_store::HistoryStore;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

pub struct ServiceStore {
    history: HistoryStore,
    claimed: Mutex<HashMap<String, Place>>,
    accepted_at: Mutex<HashMap<String, f64>>,
}

impl ServiceStore {
    pub fn new(history: HistoryStore) -> ServiceStore {
        ServiceStore {
            history,
            claimed: Mutex::default(),
            accepted_at: Mutex::default(),
        }
    }

    /// Claim the build's number and folder now; the engine gets this place later.
    pub fn claim(&self, project: &str, id: &str, at: f64) -> Result<Place, StoreError> {
        let place = self.history.create(project, id)?;
        lock(&self.claimed).insert(id.to_owned(), place.clone());
        lock(&self.accepted_at).insert(id.to_owned(), at);
        Ok(place)
    }

    /// The record with the time the service accepted the build.
    pub fn restamp(&self, build: &Build) -> Build {
        let mut build = build.clone();
        if let Some(at) = lock(&self.accepted_at).get(&build.id) {
            build.accepted_at(*at);
        }
        build
    }

    /// The build is over: forget its bookkeeping.
    pub fn forget(&self, id: &str) {
        lock(&self.claimed).remove(id);
        lock(&self.accepted_at).remove(id);
    }
}

impl Store for ServiceStore {
    fn create(&self, project: &str, build_id: &str) -> Result<Place, StoreError> {
        match lock(&self.claimed).remove(build_id) {
            Some(place) => Ok(place),
            None => self.history.create(project, build_id),
        }
    }

    fn save(&self, build: &Build) -> Result<(), StoreError> {
        self.history.save(&self.restamp(build))
    }

    fn cache_dir(&self, project: &str) -> PathBuf {
        self.history.cache_dir(project)
    }

    fn create_batch(&self, project: &str, batch_id: &str) -> Result<BatchPlace, StoreError> {
        self.history.create_batch(project, batch_id)
    }

    fn reopen_batch(&self, project: &str, number: u64) -> Result<BatchPlace, StoreError> {
        self.history.reopen_batch(project, number)
    }

    fn save_batch(&self, batch: &BuildBatch) -> Result<(), StoreError> {
        self.history.save_batch(batch)
    }
}
