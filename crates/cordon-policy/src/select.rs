//! Which policy a container gets.

use std::collections::{BTreeMap, BTreeSet};

use crate::ast::{Policy, PolicyFile, Selector};
use crate::glob::glob_match;

/// The label that names a container's policy explicitly.
pub const POLICY_LABEL: &str = "cordon.policy";

/// What selection looks at in a container.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its name, without Docker's leading `/`.
    pub name: &'a str,
    /// The image reference it was created with.
    pub image: &'a str,
    /// Its labels (compose project and service are read from them).
    pub labels: &'a BTreeMap<String, String>,
    /// The keys of `labels` whose key and value come from the image, not
    /// from whoever ran the container. Selection by label ignores them
    /// unless the policy file sets `trust_image_labels: true`.
    pub image_labels: &'a BTreeSet<String>,
}

/// The outcome of selection.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection<'a> {
    /// A policy of the file.
    Policy(&'a Policy),
    /// No policy selects it: the file's `default` body.
    Default,
    /// Its `cordon.policy` label names no policy: it gets nothing at all.
    UnknownLabel(String),
}

impl Candidate<'_> {
    /// The value of label `k` as selection sees it: `None` when the image
    /// gave it and image labels are not trusted.
    fn label(&self, k: &str, trust_image_labels: bool) -> Option<&str> {
        if !trust_image_labels && self.image_labels.contains(k) {
            return None;
        }
        self.labels.get(k).map(String::as_str)
    }
}

impl Selector {
    /// True when every criterion given matches; an empty selector matches
    /// nothing. Labels the image gave the container do not match.
    pub fn matches(&self, c: &Candidate) -> bool {
        self.matches_trusting(c, false)
    }

    /// [`Selector::matches`], with image labels taken into account when
    /// `trust_image_labels`.
    fn matches_trusting(&self, c: &Candidate, trust_image_labels: bool) -> bool {
        if self.is_empty() {
            return false;
        }
        let label = |k: &str| c.label(k, trust_image_labels);
        self.labels
            .iter()
            .all(|(k, v)| label(k) == Some(v.as_str()))
            && self.name.as_deref().is_none_or(|g| glob_match(g, c.name))
            && self.image.as_deref().is_none_or(|g| glob_match(g, c.image))
            && self
                .compose_project
                .as_deref()
                .is_none_or(|p| label("com.docker.compose.project") == Some(p))
            && self
                .compose_service
                .as_deref()
                .is_none_or(|s| label("com.docker.compose.service") == Some(s))
    }
}

impl PolicyFile {
    /// The policy for a container: its `cordon.policy` label, else the
    /// first policy in file order whose selector matches, else the default.
    ///
    /// Labels the image gave the container (see [`Candidate::image_labels`])
    /// take no part, neither `cordon.policy` nor `select: {label: …}` nor
    /// `select: {compose: …}`, unless the file sets `trust_image_labels:
    /// true`: an image must not choose its own policy.
    pub fn select(&self, c: &Candidate) -> Selection<'_> {
        let trust = self.trust_image_labels;
        if let Some(name) = c.label(POLICY_LABEL, trust) {
            return match self.policy(name) {
                Some(p) => Selection::Policy(p),
                None => Selection::UnknownLabel(name.to_string()),
            };
        }
        self.policies
            .iter()
            .find(|p| p.select.matches_trusting(c, trust))
            .map_or(Selection::Default, Selection::Policy)
    }

    /// The value of a `cordon.policy` label that selection ignores because
    /// the image set it (and the file does not set `trust_image_labels`),
    /// so that the caller can warn.
    pub fn ignored_image_policy<'c>(&self, c: &Candidate<'c>) -> Option<&'c str> {
        if self.trust_image_labels || !c.image_labels.contains(POLICY_LABEL) {
            return None;
        }
        c.labels.get(POLICY_LABEL).map(String::as_str)
    }
}
