//! The reads behind a history and a comparison, from any
//! [`HistoryStore`]: shared by `prova history`, `prova diff`, the API and
//! the pages, so they answer alike.
//!
//! A history request names a text (a ConTest test name, or a JUnit case's
//! name or `classname.name`, or part of one) and optionally a job name.
//! Exact matches win: when some subject's name is the text, only those are
//! followed; otherwise every subject whose name contains it (at most
//! [`MAX_SUBJECTS`]). Without a job name, the newest `last` jobs of any
//! name are searched for the text, and each job name it turns up in (at
//! most [`MAX_JOB_NAMES`], newest first) gets its own histories over its
//! newest `last` jobs.

use std::collections::{BTreeMap, BTreeSet};

use prova_core::{Event, JobId};
use prova_store::history::{HistoryEventFilter, HistoryJob, HistoryStore};
use serde::{Deserialize, Serialize};

use super::compare::{Comparison, JobRef, compare_jobs};
use super::outcome::{JobOutcomes, Match, Subject, job_outcomes};
use super::trend::{History, WindowJob, history_of};

/// Jobs a history covers unless asked otherwise (ReportPortal's default).
pub const DEFAULT_LAST: u32 = 30;
/// The most jobs a history covers.
pub const MAX_LAST: u32 = prova_store::history::MAX_HISTORY_JOBS;
/// The most subjects one answer follows.
pub const MAX_SUBJECTS: usize = 50;
/// The most job names one answer follows when none was given.
pub const MAX_JOB_NAMES: usize = 10;
/// The most names listed when nothing matches.
pub const MAX_KNOWN: usize = 100;
/// Jobs whose subjects are listed when nothing matches.
const KNOWN_FROM_JOBS: u32 = 5;
/// The longest text a history searches for, in bytes.
pub const MAX_TEXT: usize = 1024;

/// Why a history or comparison could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    #[error("the test to look for is empty: give a ConTest test name or a JUnit case name")]
    EmptyText,
    #[error("the test to look for is {0} bytes long; at most {MAX_TEXT} are accepted")]
    TextTooLong(usize),
    #[error("last={0}: expected 1 to {MAX_LAST} jobs")]
    BadLast(u32),
    #[error("job {0} not found")]
    JobNotFound(JobId),
    #[error("reading the store")]
    Store(#[source] prova_store::StoreError),
}

impl From<prova_store::StoreError> for HistoryError {
    fn from(e: prova_store::StoreError) -> Self {
        HistoryError::Store(e)
    }
}

/// What to follow.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRequest {
    /// A ConTest test name, a JUnit case name or `classname.name`, or part
    /// of one (case-sensitive).
    pub text: String,
    /// Only jobs of this name; `None`: every name the text turns up in.
    pub job_name: Option<String>,
    /// Newest jobs per name (1 to [`MAX_LAST`]).
    pub last: u32,
}

impl HistoryRequest {
    pub fn new(text: impl Into<String>, job_name: Option<String>, last: u32) -> Self {
        HistoryRequest {
            text: text.into(),
            job_name,
            last,
        }
    }
}

/// The histories found for a request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryAnswer {
    #[serde(rename = "Text")]
    pub text: String,
    /// Exact when a subject's name is the text; else partial.
    #[serde(rename = "Exact")]
    pub exact: bool,
    #[serde(rename = "Histories")]
    pub histories: Vec<History>,
    /// More subjects matched than [`MAX_SUBJECTS`].
    #[serde(rename = "Truncated")]
    pub truncated: bool,
    /// Job names searched (the one asked for, or those the text turned up in).
    #[serde(rename = "JobNames")]
    pub job_names: Vec<String>,
    /// When nothing matched: the tests and cases of the newest jobs
    /// searched, so the caller can say what exists (`kind: name`).
    #[serde(rename = "Known", default, skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<String>,
    /// When nothing matched: how many jobs were searched.
    #[serde(rename = "JobsSearched")]
    pub jobs_searched: u32,
}

/// The text pre-filter the store applies (see
/// [`HistoryEventFilter::contains`]): the part of the text after its last
/// `.`, which any case whose `classname.name` contains the text has in its
/// classname or name (the whole text when it has no `.`).
fn prefilter(text: &str) -> Option<String> {
    let tail = text.rsplit('.').next().unwrap_or(text);
    (!tail.is_empty()).then(|| tail.to_string())
}

/// Outcomes of each job, from their history events.
fn outcomes_by_job(jobs: &[HistoryJob], events: &[Event]) -> Vec<JobOutcomes> {
    let mut by_job: BTreeMap<JobId, Vec<&Event>> = BTreeMap::new();
    for e in events {
        by_job.entry(e.job_id).or_default().push(e);
    }
    jobs.iter()
        .map(|j| {
            let evs: Vec<Event> = by_job
                .remove(&j.id)
                .unwrap_or_default()
                .into_iter()
                .cloned()
                .collect();
            job_outcomes(j.id, &j.extended_descriptor, &evs)
        })
        .collect()
}

/// Histories of what `req.text` names (see the module docs).
pub async fn load_history(
    store: &dyn HistoryStore,
    req: &HistoryRequest,
) -> Result<HistoryAnswer, HistoryError> {
    let text = req.text.as_str();
    if text.trim().is_empty() {
        return Err(HistoryError::EmptyText);
    }
    if text.len() > MAX_TEXT {
        return Err(HistoryError::TextTooLong(text.len()));
    }
    if req.last == 0 || req.last > MAX_LAST {
        return Err(HistoryError::BadLast(req.last));
    }
    let contains = prefilter(text);
    let names = match &req.job_name {
        Some(n) => vec![n.clone()],
        None => names_with(store, text, contains.clone(), req.last).await?,
    };
    let mut answer = HistoryAnswer {
        text: text.to_string(),
        job_names: names.clone(),
        ..Default::default()
    };
    // (job name, subject, match), over every name.
    let mut windows = Vec::new();
    for name in &names {
        let jobs = store.jobs_named(name, req.last).await?;
        answer.jobs_searched += jobs.len() as u32;
        let events = store
            .history_events(&HistoryEventFilter {
                jobs: jobs.iter().map(|j| j.id).collect(),
                contains: contains.clone(),
            })
            .await?;
        let outcomes = outcomes_by_job(&jobs, &events);
        windows.push((name.clone(), jobs, outcomes));
    }
    let mut found: BTreeMap<(usize, Subject), Match> = BTreeMap::new();
    for (w, (_, _, outcomes)) in windows.iter().enumerate() {
        for o in outcomes {
            for s in o.subjects.keys() {
                let m = s.matches(text);
                if m != Match::No {
                    found.entry((w, s.clone())).or_insert(m);
                }
            }
        }
    }
    answer.exact = found.values().any(|m| *m == Match::Exact);
    let wanted = if answer.exact {
        Match::Exact
    } else {
        Match::Partial
    };
    let mut chosen: Vec<(usize, Subject)> = found
        .into_iter()
        .filter(|(_, m)| *m == wanted)
        .map(|(k, _)| k)
        .collect();
    if chosen.len() > MAX_SUBJECTS {
        answer.truncated = true;
        chosen.truncate(MAX_SUBJECTS);
    }
    for (w, subject) in chosen {
        let (name, jobs, outcomes) = &windows[w];
        let window: Vec<WindowJob<'_>> = jobs
            .iter()
            .zip(outcomes)
            .map(|(j, o)| WindowJob {
                created_at: j.created_at,
                state: j.state.map(|s| s.as_str().to_string()),
                outcomes: o,
            })
            .collect();
        answer.histories.push(history_of(&subject, name, &window));
    }
    if answer.histories.is_empty() {
        answer.known = known_subjects(store, req.job_name.as_deref()).await?;
    }
    Ok(answer)
}

/// The job names among the newest `last` jobs whose history events match
/// `text`, newest first.
async fn names_with(
    store: &dyn HistoryStore,
    text: &str,
    contains: Option<String>,
    last: u32,
) -> Result<Vec<String>, HistoryError> {
    let jobs = store.newest_jobs(last).await?;
    let events = store
        .history_events(&HistoryEventFilter {
            jobs: jobs.iter().map(|j| j.id).collect(),
            contains,
        })
        .await?;
    let outcomes = outcomes_by_job(&jobs, &events);
    let mut names = Vec::new();
    let mut seen = BTreeSet::new();
    for (j, o) in jobs.iter().zip(&outcomes) {
        if o.subjects.keys().any(|s| s.matches(text) != Match::No) && seen.insert(&j.name) {
            names.push(j.name.clone());
            if names.len() == MAX_JOB_NAMES {
                break;
            }
        }
    }
    Ok(names)
}

/// `kind: name` of every test and case of the newest few jobs (of
/// `job_name` if given), to say what exists when nothing matched.
async fn known_subjects(
    store: &dyn HistoryStore,
    job_name: Option<&str>,
) -> Result<Vec<String>, HistoryError> {
    let jobs = match job_name {
        Some(n) => store.jobs_named(n, KNOWN_FROM_JOBS).await?,
        None => store.newest_jobs(KNOWN_FROM_JOBS).await?,
    };
    let events = store
        .history_events(&HistoryEventFilter {
            jobs: jobs.iter().map(|j| j.id).collect(),
            contains: None,
        })
        .await?;
    let mut known = BTreeSet::new();
    for o in outcomes_by_job(&jobs, &events) {
        for s in o.subjects.keys() {
            known.insert(format!("{}: {}", s.kind(), s.full_name()));
        }
    }
    Ok(known.into_iter().take(MAX_KNOWN).collect())
}

/// Compares job `head` against job `base` (see [`super::compare`]).
pub async fn load_comparison(
    store: &dyn HistoryStore,
    base: JobId,
    head: JobId,
) -> Result<Comparison, HistoryError> {
    let jobs = store.history_jobs(&[base, head]).await?;
    let find = |id: JobId| {
        jobs.iter()
            .find(|j| j.id == id)
            .ok_or(HistoryError::JobNotFound(id))
    };
    let (b, h) = (find(base)?, find(head)?);
    let events = store
        .history_events(&HistoryEventFilter {
            jobs: vec![base, head],
            contains: None,
        })
        .await?;
    let bo = job_outcomes(b.id, &b.extended_descriptor, &events);
    let ho = job_outcomes(h.id, &h.extended_descriptor, &events);
    let r = |j: &HistoryJob| JobRef {
        id: j.id,
        name: j.name.clone(),
    };
    Ok(compare_jobs((&r(b), &bo), (&r(h), &ho)))
}
