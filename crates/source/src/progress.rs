//! Progress of long fetches as tracing log lines.
//!
//! gix reports progress through counters it bumps (cheap atomics). A reporter thread
//! wakes every few seconds while a fetch runs and logs every active counter, so a
//! short fetch logs nothing extra and a long clone shows that it is moving.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gix::progress::{Id, MessageLevel, Step, StepShared, UNKNOWN, Unit};
use gix::{Count, NestedProgress, Progress};

const EVERY: Duration = Duration::from_secs(5);

struct Task {
    name: String,
    step: StepShared,
    max: Option<Step>,
    active: bool,
}

type Tasks = Arc<Mutex<Vec<Task>>>;

/// A gix progress whose counters a [`Reporter`] logs.
pub(crate) struct TraceProgress {
    tasks: Tasks,
    index: usize,
    step: StepShared,
}

impl TraceProgress {
    fn push(tasks: &Tasks, name: String) -> Self {
        let step: StepShared = Arc::new(AtomicUsize::new(0));
        let mut list = tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        list.push(Task {
            name,
            step: step.clone(),
            max: None,
            active: false,
        });
        TraceProgress {
            tasks: tasks.clone(),
            index: list.len() - 1,
            step,
        }
    }

    fn with_task<R>(&self, f: impl FnOnce(&mut Task) -> R) -> R {
        let mut list = self
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut list[self.index])
    }
}

impl Count for TraceProgress {
    fn set(&self, step: Step) {
        self.step.store(step, Ordering::Relaxed);
    }
    fn step(&self) -> Step {
        self.step.load(Ordering::Relaxed)
    }
    fn inc_by(&self, step: Step) {
        self.step.fetch_add(step, Ordering::Relaxed);
    }
    fn counter(&self) -> StepShared {
        self.step.clone()
    }
}

impl Progress for TraceProgress {
    fn init(&mut self, max: Option<Step>, unit: Option<Unit>) {
        self.with_task(|task| {
            task.max = max;
            task.active = max.is_some() || unit.is_some();
        });
    }
    fn set_max(&mut self, max: Option<Step>) -> Option<Step> {
        self.with_task(|task| std::mem::replace(&mut task.max, max))
    }
    fn max(&self) -> Option<Step> {
        self.with_task(|task| task.max)
    }
    fn set_name(&mut self, name: String) {
        self.with_task(|task| task.name = name);
    }
    fn name(&self) -> Option<String> {
        Some(self.with_task(|task| task.name.clone()))
    }
    fn id(&self) -> Id {
        UNKNOWN
    }
    fn message(&self, level: MessageLevel, message: String) {
        let name = self.with_task(|task| task.name.clone());
        match level {
            MessageLevel::Failure => tracing::warn!(task = %name, "{message}"),
            _ => tracing::debug!(task = %name, "{message}"),
        }
    }
}

impl NestedProgress for TraceProgress {
    type SubProgress = TraceProgress;
    fn add_child(&mut self, name: impl Into<String>) -> Self::SubProgress {
        TraceProgress::push(&self.tasks, name.into())
    }
    fn add_child_with_id(&mut self, name: impl Into<String>, _id: Id) -> Self::SubProgress {
        self.add_child(name)
    }
}

/// Logs the counters of one fetch every few seconds until dropped.
pub(crate) struct Reporter {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reporter {
    /// Starts reporting for a fetch of `url`; returns the root progress to hand to gix.
    pub(crate) fn start(url: &str) -> (Self, TraceProgress) {
        let tasks: Tasks = Arc::default();
        let root = TraceProgress::push(&tasks, "fetch".into());
        let (stop, stopped) = mpsc::channel::<()>();
        let url = url.to_owned();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("fetch progress".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    let list = tasks
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let parts: Vec<String> = list
                        .iter()
                        .filter(|t| t.active)
                        .map(|t| {
                            let step = t.step.load(Ordering::Relaxed);
                            match t.max {
                                Some(max) if max > 0 => format!("{}: {step}/{max}", t.name),
                                _ => format!("{}: {step}", t.name),
                            }
                        })
                        .collect();
                    drop(list);
                    tracing::info!(
                        url = %url,
                        elapsed_s = started.elapsed().as_secs(),
                        "still fetching: {}",
                        parts.join(", ")
                    );
                }
            })
            .ok();
        (
            Reporter {
                stop: Some(stop),
                thread,
            },
            root,
        )
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
