//! Bounded queues for expensive requests (bcrypt password checks, `/probe` runs): at most
//! `running` at once and `waiting` more in line; anyone beyond that is refused at once, so a
//! flood costs a fixed amount of threads and CPU and the caller answers 503.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A queue with a fixed number of running and waiting places.
#[derive(Debug)]
pub struct Admission {
    places: Arc<Semaphore>,
    running: Arc<Semaphore>,
    sizes: (usize, usize),
}

/// A place in line; `start` waits for a running place.
#[derive(Debug)]
pub struct Queued {
    place: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

/// Held while running; dropping it lets the next one in.
#[derive(Debug)]
pub struct Running {
    _place: OwnedSemaphorePermit,
    _running: Option<OwnedSemaphorePermit>,
}

/// The queue was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{running} running and {waiting} waiting already")]
pub struct Full {
    pub running: usize,
    pub waiting: usize,
}

impl Admission {
    /// `running` at once (at least 1), `waiting` more in line.
    pub fn new(running: usize, waiting: usize) -> Self {
        let running = running.max(1);
        Admission {
            places: Arc::new(Semaphore::new(running + waiting)),
            running: Arc::new(Semaphore::new(running)),
            sizes: (running, waiting),
        }
    }

    /// Takes a place in line, or refuses at once when the line is full.
    pub fn enter(&self) -> Result<Queued, Full> {
        let (running, waiting) = self.sizes;
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full { running, waiting })?;
        Ok(Queued {
            place,
            running: self.running.clone(),
        })
    }
}

impl Queued {
    /// Waits for a running place.
    pub async fn start(self) -> Running {
        // The semaphore is never closed, so this always gets a permit.
        let run = self.running.acquire_owned().await.ok();
        Running {
            _place: self.place,
            _running: run,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn runs_one_queues_some_and_refuses_the_rest() {
        let a = Admission::new(1, 2);
        let first = a.enter().unwrap().start().await;
        let second = a.enter().unwrap();
        let _third = a.enter().unwrap();
        assert_eq!(
            a.enter().unwrap_err(),
            Full {
                running: 1,
                waiting: 2
            }
        );
        let waiting = tokio::spawn(second.start());
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "one runs at a time");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the next one starts")
            .unwrap();
        assert!(a.enter().is_ok(), "a place is free again");
    }
}
