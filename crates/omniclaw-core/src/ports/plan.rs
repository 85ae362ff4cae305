//! The isolation audit across instances: every surface of every instance
//! laid side by side, and every way two instances step on each other.
//!
//! Overlaps are found by sorting all ranges and sweeping once, so a plan of
//! a thousand instances costs about as much as sorting their ranges. Each
//! conflict carries a fix for the instance that can move: never a foreign
//! (OpenClaw) install, whose ports are only reserved.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::reserve::{Claims, Reservations};
use super::{
    derive, relation, BindScope, Derivation, PortError, PortInputs, PortKey, PortRange, Surface,
    DEFAULT_BASE, MIN_SPACING,
};

/// One gateway instance as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// How reports name it: a profile name (`main`, `default`) or a foreign
    /// install (`openclaw:.openclaw-work`).
    pub name: String,
    /// A real OpenClaw install: its ports are reserved, it is never moved.
    pub foreign: bool,
    /// The ports it asks for.
    pub ports: PortInputs,
    /// False when its ports are unknown (config unreadable): it then joins
    /// the plan with its paths only and reserves no port.
    pub has_ports: bool,
    /// Its config file.
    pub config_path: Option<PathBuf>,
    /// Its state dir.
    pub state_dir: Option<PathBuf>,
    /// Its workspace.
    pub workspace: Option<PathBuf>,
    /// Pinned CDP endpoints as (config key, URL), e.g.
    /// (`browser.profiles.work.cdpUrl`, `http://127.0.0.1:9222`).
    pub cdp_urls: Vec<(String, String)>,
    /// A fingerprint of its Telegram bot token, compared, never shown.
    pub bot_token_fingerprint: Option<String>,
}

impl Instance {
    /// An OmniClaw profile with these ports and nothing else known.
    pub fn new(name: impl Into<String>, ports: PortInputs) -> Instance {
        Instance {
            name: name.into(),
            foreign: false,
            ports,
            has_ports: true,
            config_path: None,
            state_dir: None,
            workspace: None,
            cdp_urls: Vec::new(),
            bot_token_fingerprint: None,
        }
    }
}

/// One surface of one instance in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The instance's name.
    pub instance: String,
    /// Whether the instance is a foreign install.
    pub foreign: bool,
    /// The surface.
    pub surface: Surface,
    /// Its ports.
    pub range: PortRange,
    /// Where it listens (always loopback for the browser and webhook).
    pub bind: BindScope,
    /// The config key that places it.
    pub key: PortKey,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let foreign = if self.foreign { " (foreign)" } else { "" };
        write!(
            f,
            "{}{foreign} {} {} {} ({})",
            self.instance, self.surface, self.range, self.bind, self.key
        )
    }
}

/// Which path two instances share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathKind {
    /// The config file.
    ConfigPath,
    /// The state dir.
    StateDir,
    /// The workspace (`agents.defaults.workspace`).
    Workspace,
}

impl PathKind {
    /// This path of `instance`, if known.
    fn of(self, instance: &Instance) -> Option<&Path> {
        match self {
            PathKind::ConfigPath => instance.config_path.as_deref(),
            PathKind::StateDir => instance.state_dir.as_deref(),
            PathKind::Workspace => instance.workspace.as_deref(),
        }
    }
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathKind::ConfigPath => "config path",
            PathKind::StateDir => "state dir",
            PathKind::Workspace => "workspace",
        })
    }
}

/// One way two instances are not isolated. In every variant `b` is the
/// instance the fix changes: the later one in input order, unless that one
/// is foreign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A surface of `b` shares ports with a surface of `a`, whatever their
    /// binds (a port taken on loopback cannot be taken on the LAN).
    PortOverlap {
        a: String,
        a_surface: Surface,
        a_range: PortRange,
        b: String,
        b_surface: Surface,
        b_range: PortRange,
        /// The key that moves `b`'s surface.
        b_key: PortKey,
        /// A free value for `b_key`, if the port space has one.
        suggestion: Option<u16>,
    },
    /// Both use the same config path, state dir or workspace.
    SharedPath {
        kind: PathKind,
        path: PathBuf,
        a: String,
        b: String,
    },
    /// Both pin the same CDP endpoint (same host and port).
    SharedCdpUrl {
        url: String,
        a: String,
        a_key: String,
        b: String,
        b_key: String,
    },
    /// Both use the same Telegram bot token.
    SharedBotToken { a: String, b: String },
}

impl Conflict {
    /// The two instances, as (`a`, `b`); `b` is the one the fix changes.
    pub fn instances(&self) -> (&str, &str) {
        match self {
            Conflict::PortOverlap { a, b, .. }
            | Conflict::SharedPath { a, b, .. }
            | Conflict::SharedCdpUrl { a, b, .. }
            | Conflict::SharedBotToken { a, b } => (a, b),
        }
    }

    /// What to do about it, with the command to run where there is one.
    pub fn fix(&self) -> String {
        match self {
            Conflict::PortOverlap {
                a,
                a_surface,
                a_range,
                b,
                b_surface,
                b_key,
                suggestion,
                ..
            } => {
                let command = command_of(b);
                match (b_key, suggestion) {
                    (PortKey::GatewayPort, Some(base)) => {
                        format!("move {b} to base {base}: {command} config set gateway.port {base}")
                    }
                    (key, Some(port)) => format!(
                        "move {b}'s {b_surface} off {a}'s {a_surface} {a_range}: \
                         {command} config set {key} {port}"
                    ),
                    (key, None) => format!(
                        "no free place is left for {b}'s {b_surface}: disable a surface or remove \
                         an instance, then set {key} of {b} clear of {a}'s {a_surface} {a_range}"
                    ),
                }
            }
            Conflict::SharedPath { kind, b, .. } => {
                let command = command_of(b);
                // The defaults of the profile, which the fix restores.
                let (dir, workspace) = if b == "default" {
                    (
                        "~/.omniclaw".to_string(),
                        "~/.omniclaw/workspace".to_string(),
                    )
                } else {
                    (
                        format!("~/.omniclaw-{b}"),
                        format!("~/.omniclaw/workspace-{b}"),
                    )
                };
                match kind {
                    PathKind::ConfigPath => format!(
                        "give {b} its own config file: unset OMNICLAW_CONFIG_PATH for it \
                         so `{command}` uses {dir}/omniclaw.json"
                    ),
                    PathKind::StateDir => format!(
                        "give {b} its own state dir: unset OMNICLAW_STATE_DIR for it \
                         so `{command}` uses {dir}"
                    ),
                    PathKind::Workspace => format!(
                        "give {b} its own workspace: \
                         {command} config set agents.defaults.workspace {workspace}"
                    ),
                }
            }
            Conflict::SharedCdpUrl { b, b_key, .. } => format!(
                "point {b_key} of {b} at a browser of its own (another debugging port), \
                 or remove it so {b} starts its own browser in its CDP range"
            ),
            Conflict::SharedBotToken { b, .. } => format!(
                "create a separate bot for {b} with @BotFather and store its token: {} onboard",
                command_of(b)
            ),
        }
    }
}

fn command_of(name: &str) -> String {
    if name == "default" {
        "omniclaw".to_string()
    } else {
        format!("omniclaw --profile {name}")
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::PortOverlap {
                a,
                a_surface,
                a_range,
                b,
                b_surface,
                b_range,
                ..
            } => {
                let rel = relation(b_range, a_range);
                write!(
                    f,
                    "{b} {b_surface} {b_range} {rel} {a}'s {a_surface} {a_range}"
                )
            }
            Conflict::SharedPath { kind, path, a, b } => {
                write!(f, "{a} and {b} share the {kind} {}", path.display())
            }
            Conflict::SharedCdpUrl {
                url,
                a,
                a_key,
                b,
                b_key,
            } => {
                write!(
                    f,
                    "{a} and {b} pin the same CDP endpoint {url} ({a}: {a_key}, {b}: {b_key})"
                )
            }
            Conflict::SharedBotToken { a, b } => {
                write!(f, "{a} and {b} use the same Telegram bot token")
            }
        }
    }
}

/// The ports of all instances and everything that keeps them from being
/// isolated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// One row per instance and surface, instances in input order.
    pub rows: Vec<Row>,
    /// Conflicts between instances: port overlaps, then shared paths,
    /// shared CDP endpoints and shared bot tokens, each in input order.
    pub conflicts: Vec<Conflict>,
    /// Instances whose own ports are broken, in input order.
    pub errors: Vec<PortProblem>,
}

/// An instance whose own ports are broken (see [`PortError`]), with a value
/// of the key to change that would fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortProblem {
    /// The instance's name.
    pub instance: String,
    /// What is wrong.
    pub error: PortError,
    /// A value of `error.key()` that fits and is clear of every other
    /// instance, if the port space has one.
    pub suggestion: Option<u16>,
}

impl PortProblem {
    /// What to do about it, with the command to run where there is one.
    pub fn fix(&self) -> String {
        let name = &self.instance;
        let command = command_of(name);
        let key = self.error.key();
        match (key, self.suggestion) {
            (PortKey::GatewayPort, Some(base)) => {
                format!("move {name} to base {base}: {command} config set gateway.port {base}")
            }
            (key, Some(port)) => format!("{command} config set {key} {port}"),
            (key, None) => format!(
                "no free place is left for {key} of {name}: disable a surface or remove an \
                 instance, then set {key} to a port that fits"
            ),
        }
    }
}

impl fmt::Display for PortProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.instance, self.error)
    }
}

impl Plan {
    /// Whether nothing needs fixing.
    pub fn is_clean(&self) -> bool {
        self.conflicts.is_empty() && self.errors.is_empty()
    }
}

/// Lays out every instance's ports and audits their isolation.
///
/// An instance with broken ports (see [`PortError`]) still takes part with
/// what can be allocated, so its other conflicts are not hidden. Conflicts
/// between two foreign instances are left out: they are not OmniClaw's to
/// fix.
pub fn plan(instances: &[Instance]) -> Plan {
    let derived: Vec<Derivation> = instances.iter().map(derivation).collect();
    let mut plan = Plan::default();

    for (instance, d) in instances.iter().zip(&derived) {
        // A range cut off at 65535 is not what the surface needs: its error
        // says where it would end, and no row shows a made-up range.
        let whole = d.allocations.iter().zip(&d.cut).filter(|(_, cut)| !**cut);
        plan.rows.extend(whole.map(|(a, _)| Row {
            instance: instance.name.clone(),
            foreign: instance.foreign,
            surface: a.surface.clone(),
            range: a.range,
            bind: if a.loopback_only {
                BindScope::Loopback
            } else {
                instance.ports.bind.clone()
            },
            key: a.key.clone(),
        }));
    }

    let overlaps = port_overlaps(instances, &derived);
    let broken = derived.iter().any(|d| !d.errors.is_empty());
    if !overlaps.is_empty() || broken {
        let reservations = Reservations::new(instances, &derived);
        let mut suggestions = Suggestions::default();
        for (index, (instance, d)) in instances.iter().zip(&derived).enumerate() {
            for error in &d.errors {
                let suggestion = suggestions.for_error(&reservations, index, instance, d, error);
                plan.errors.push(PortProblem {
                    instance: instance.name.clone(),
                    error: error.clone(),
                    suggestion,
                });
            }
        }
        for o in overlaps {
            let (a, b) = (&instances[o.a], &instances[o.b]);
            let (a_alloc, b_alloc) = (
                &derived[o.a].allocations[o.a_alloc],
                &derived[o.b].allocations[o.b_alloc],
            );
            let suggestion = suggestions.get(&reservations, o.b, b, &derived[o.b], &b_alloc.key);
            plan.conflicts.push(Conflict::PortOverlap {
                a: a.name.clone(),
                a_surface: a_alloc.surface.clone(),
                a_range: a_alloc.range,
                b: b.name.clone(),
                b_surface: b_alloc.surface.clone(),
                b_range: b_alloc.range,
                b_key: b_alloc.key.clone(),
                suggestion,
            });
        }
    }

    shared_paths(instances, &mut plan.conflicts);
    shared_cdp_urls(instances, &mut plan.conflicts);
    shared_tokens(instances, &mut plan.conflicts);
    plan
}

fn derivation(instance: &Instance) -> Derivation {
    if instance.has_ports {
        derive(&instance.ports)
    } else {
        Derivation::default()
    }
}

/// Two instances in fix order: `b` changes, `a` stays. `None` for two
/// foreign instances.
fn order(instances: &[Instance], x: usize, y: usize) -> Option<(usize, usize)> {
    let (lo, hi) = (x.min(y), x.max(y));
    match (instances[lo].foreign, instances[hi].foreign) {
        (true, true) => None,
        (false, true) => Some((hi, lo)),
        _ => Some((lo, hi)),
    }
}

/// An overlap by indices: instance `a`'s allocation `a_alloc` against
/// instance `b`'s allocation `b_alloc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Overlap {
    a: usize,
    b: usize,
    a_alloc: usize,
    b_alloc: usize,
}

/// Every overlap between allocations of different instances, by one sweep
/// over the ranges sorted by start. Ordered by instance pair in input
/// order, then by `b`'s and `a`'s surface order.
fn port_overlaps(instances: &[Instance], derived: &[Derivation]) -> Vec<Overlap> {
    struct Item {
        start: u16,
        end: u16,
        instance: usize,
        alloc: usize,
    }
    let mut items: Vec<Item> = derived
        .iter()
        .enumerate()
        .flat_map(|(instance, d)| {
            d.allocations
                .iter()
                .enumerate()
                .map(move |(alloc, a)| Item {
                    start: a.range.start(),
                    end: a.range.end(),
                    instance,
                    alloc,
                })
        })
        .collect();
    items.sort_unstable_by_key(|i| (i.start, i.instance, i.alloc));

    let mut found = Vec::new();
    let mut active: Vec<&Item> = Vec::new();
    for item in &items {
        active.retain(|open| open.end >= item.start);
        for open in &active {
            if open.instance == item.instance {
                continue;
            }
            if let Some((a, b)) = order(instances, open.instance, item.instance) {
                let (a_alloc, b_alloc) = if a == open.instance {
                    (open.alloc, item.alloc)
                } else {
                    (item.alloc, open.alloc)
                };
                found.push(Overlap {
                    a,
                    b,
                    a_alloc,
                    b_alloc,
                });
            }
        }
        active.push(item);
    }
    found.sort_unstable_by_key(|o| (o.a.min(o.b), o.a.max(o.b), o.b_alloc, o.a_alloc));
    found
}

/// Suggested values handed out so far: one per moving group (an
/// instance's key), each one claimed so that no two fixes send instances to
/// the same place.
#[derive(Default)]
struct Suggestions {
    given: HashMap<u32, Option<u16>>,
    claims: Claims,
}

impl Suggestions {
    /// A value for the key `error` names. A key whose ports pass 65535 gets
    /// a place for all it would place, at or below its highest fitting
    /// value; a key of 0 gets none (any port is a choice only the user can
    /// make).
    fn for_error(
        &mut self,
        reservations: &Reservations,
        index: usize,
        instance: &Instance,
        derived: &Derivation,
        error: &PortError,
    ) -> Option<u16> {
        match error {
            PortError::DerivedOverflow {
                key,
                base,
                needed,
                max_base,
                ..
            } => {
                let group = reservations.group(index, key)?;
                if let Some(given) = self.given.get(&group) {
                    return *given;
                }
                let reach = needed.saturating_sub(u32::from(*base)) + 1;
                let len = if *key == PortKey::GatewayPort {
                    reach.max(u32::from(MIN_SPACING))
                } else {
                    reach
                };
                // The highest value that fits when it is free, else the
                // first free place from the default base up.
                let found = reservations
                    .find(*max_base, len, Some(group), &self.claims)
                    .filter(|start| start == max_base)
                    .or_else(|| {
                        reservations.find(
                            DEFAULT_BASE.min(*max_base),
                            len,
                            Some(group),
                            &self.claims,
                        )
                    })
                    .filter(|start| start <= max_base);
                if let Some(start) = found {
                    self.claims
                        .claim(u32::from(start), u32::from(start) + len - 1);
                }
                self.given.insert(group, found);
                found
            }
            PortError::SelfOverlap { key, .. } => {
                self.get(reservations, index, instance, derived, key)
            }
            PortError::ZeroPort { .. } => None,
        }
    }

    fn get(
        &mut self,
        reservations: &Reservations,
        index: usize,
        instance: &Instance,
        derived: &Derivation,
        key: &PortKey,
    ) -> Option<u16> {
        // Every allocation is reserved, so its key has a group.
        let group = reservations.group(index, key)?;
        if let Some(given) = self.given.get(&group) {
            return *given;
        }
        let current = key.value_in(&instance.ports).unwrap_or(1);
        let len = if *key == PortKey::GatewayPort {
            u32::from(MIN_SPACING)
        } else {
            // Everything the key moves, from the key's port to the farthest
            // port it places (a control port carries its CDP range along).
            derived
                .allocations
                .iter()
                .filter(|a| a.key == *key)
                .map(|a| u32::from(a.range.end()).saturating_sub(u32::from(current)) + 1)
                .max()
                .unwrap_or(1)
        };
        let found = reservations.find(current, len, Some(group), &self.claims);
        if let Some(start) = found {
            self.claims
                .claim(u32::from(start), u32::from(start) + len - 1);
        }
        self.given.insert(group, found);
        found
    }
}

/// The conflicts an edit would bring: those of `candidate` (the instance as
/// the edit leaves it) against `others` that `current` (the same instance
/// before the edit, if it exists) does not already have. The edited
/// instance is placed last, so every fix moves it and never the others.
/// Conflicts are compared as reported (`Display`), so moving a port from
/// one clash into another is a new conflict, while an edit of an unrelated
/// key never is.
pub fn new_conflicts(
    others: &[Instance],
    current: Option<&Instance>,
    candidate: &Instance,
) -> Vec<Conflict> {
    let involving = |instance: &Instance| -> Vec<Conflict> {
        let mut all = others.to_vec();
        all.push(instance.clone());
        plan(&all)
            .conflicts
            .into_iter()
            .filter(|c| {
                let (a, b) = c.instances();
                a == instance.name || b == instance.name
            })
            .collect()
    };
    let before: Vec<String> = current
        .map(|c| involving(c).iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    involving(candidate)
        .into_iter()
        .filter(|c| !before.contains(&c.to_string()))
        .collect()
}

fn shared_paths(instances: &[Instance], out: &mut Vec<Conflict>) {
    for kind in [
        PathKind::ConfigPath,
        PathKind::StateDir,
        PathKind::Workspace,
    ] {
        let mut by_path: HashMap<&Path, Vec<usize>> = HashMap::new();
        for (index, instance) in instances.iter().enumerate() {
            if let Some(path) = kind.of(instance) {
                by_path.entry(path).or_default().push(index);
            }
        }
        let mut pairs: Vec<(usize, usize, &Path)> = Vec::new();
        for (path, holders) in &by_path {
            for (n, &x) in holders.iter().enumerate() {
                for &y in &holders[n + 1..] {
                    if let Some((a, b)) = order(instances, x, y) {
                        pairs.push((a, b, path));
                    }
                }
            }
        }
        pairs.sort_unstable_by_key(|&(a, b, _)| (a.min(b), a.max(b)));
        out.extend(pairs.into_iter().map(|(a, b, path)| Conflict::SharedPath {
            kind,
            path: path.to_path_buf(),
            a: instances[a].name.clone(),
            b: instances[b].name.clone(),
        }));
    }
}

/// Sort key of a shared CDP endpoint: the instance pair, then where the two
/// keys appear in the input.
type PairOrder = (usize, usize, usize, usize);

fn shared_cdp_urls(instances: &[Instance], out: &mut Vec<Conflict>) {
    // endpoint -> (sequence, instance, key, url), in input order
    let mut by_endpoint: HashMap<String, Vec<(usize, usize, &str, &str)>> = HashMap::new();
    let pinned = instances.iter().enumerate().flat_map(|(index, instance)| {
        instance
            .cdp_urls
            .iter()
            .map(move |(key, url)| (index, key.as_str(), url.as_str()))
    });
    for (seq, (index, key, url)) in pinned.enumerate() {
        by_endpoint
            .entry(cdp_endpoint(url))
            .or_default()
            .push((seq, index, key, url));
    }
    // (instance pair, sequence numbers of the two keys) -> conflict
    let mut found: Vec<(PairOrder, Conflict)> = Vec::new();
    for holders in by_endpoint.values() {
        // One conflict per instance pair and endpoint: the first keys win.
        let mut reported: Vec<(usize, usize)> = Vec::new();
        for (n, &(x_seq, x, x_key, x_url)) in holders.iter().enumerate() {
            for &(y_seq, y, y_key, y_url) in &holders[n + 1..] {
                let Some((a, b)) = order(instances, x, y).filter(|_| x != y) else {
                    continue;
                };
                if reported.contains(&(a, b)) {
                    continue;
                }
                reported.push((a, b));
                let ((a_key, a_url), b_key) = if a == x {
                    ((x_key, x_url), y_key)
                } else {
                    ((y_key, y_url), x_key)
                };
                let conflict = Conflict::SharedCdpUrl {
                    url: a_url.to_string(),
                    a: instances[a].name.clone(),
                    a_key: a_key.to_string(),
                    b: instances[b].name.clone(),
                    b_key: b_key.to_string(),
                };
                found.push(((a.min(b), a.max(b), x_seq, y_seq), conflict));
            }
        }
    }
    found.sort_unstable_by_key(|(order, _)| *order);
    out.extend(found.into_iter().map(|(_, conflict)| conflict));
}

fn shared_tokens(instances: &[Instance], out: &mut Vec<Conflict>) {
    let mut by_token: HashMap<&str, Vec<usize>> = HashMap::new();
    for (index, instance) in instances.iter().enumerate() {
        if let Some(fp) = instance
            .bot_token_fingerprint
            .as_deref()
            .filter(|fp| !fp.is_empty())
        {
            by_token.entry(fp).or_default().push(index);
        }
    }
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for holders in by_token.values() {
        for (n, &x) in holders.iter().enumerate() {
            pairs.extend(
                holders[n + 1..]
                    .iter()
                    .filter_map(|&y| order(instances, x, y)),
            );
        }
    }
    pairs.sort_unstable_by_key(|&(a, b)| (a.min(b), a.max(b)));
    out.extend(pairs.into_iter().map(|(a, b)| Conflict::SharedBotToken {
        a: instances[a].name.clone(),
        b: instances[b].name.clone(),
    }));
}

/// The browser a CDP URL reaches, as `host:port`: the scheme (http, ws),
/// path and user info do not matter, and every loopback name is the same
/// host. A string that is not a URL compares as itself.
fn cdp_endpoint(url: &str) -> String {
    let lower = url.trim().to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return lower.trim_end_matches('/').to_string();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (v6, None),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let host = match host {
        "localhost" | "127.0.0.1" | "::1" => "loopback",
        other => other,
    };
    let port = port
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| {
            match scheme {
                "https" | "wss" => "443",
                _ => "80",
            }
            .to_string()
        });
    format!("{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(name: &str, base: u16) -> Instance {
        Instance::new(name, PortInputs::with_base(base))
    }

    fn edit(mut instance: Instance, f: impl FnOnce(&mut Instance)) -> Instance {
        f(&mut instance);
        instance
    }

    fn foreign(name: &str, base: u16) -> Instance {
        edit(at(name, base), |i| i.foreign = true)
    }

    /// Each conflict rendered as "message | fix".
    #[track_caller]
    fn check(instances: &[Instance], expected: &[&str]) {
        let got: Vec<String> = plan(instances)
            .conflicts
            .iter()
            .map(|c| format!("{c} | {}", c.fix()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn an_edit_is_judged_by_the_conflicts_it_adds() {
        let others = [at("main", 18789)];
        let rescue = at("rescue", 19789);
        let shown = |cs: Vec<Conflict>| -> Vec<String> {
            cs.iter().map(|c| format!("{c} | {}", c.fix())).collect()
        };
        // Into main's CDP range: every clash is new, and the fix moves rescue.
        let into_cdp = shown(new_conflicts(&others, Some(&rescue), &at("rescue", 18800)));
        assert_eq!(
            into_cdp.first().map(String::as_str),
            Some("rescue base 18800 lies in main's CDP range 18800–18899 | move rescue to base 18900: omniclaw --profile rescue config set gateway.port 18900")
        );
        // A clean move, and an edit that leaves an old clash as it was.
        assert!(new_conflicts(&others, Some(&rescue), &at("rescue", 20789)).is_empty());
        let clashing = at("rescue", 18800);
        assert!(new_conflicts(&others, Some(&clashing), &clashing.clone()).is_empty());
        // A new profile (no current state) is judged whole.
        assert!(!new_conflicts(&others, None, &at("rescue", 18789)).is_empty());
    }

    #[test]
    fn bases_twenty_apart_collide_and_111_apart_do_not() {
        let fix =
            "move rescue to base 18900: omniclaw --profile rescue config set gateway.port 18900";
        check(
            &[at("main", 18789), at("rescue", 18809)],
            &[
                &format!("rescue base 18809 lies in main's CDP range 18800–18899 | {fix}"),
                &format!(
                    "rescue browser control 18811 lies in main's CDP range 18800–18899 | {fix}"
                ),
                &format!("rescue canvas 18813 lies in main's CDP range 18800–18899 | {fix}"),
                &format!(
                    "rescue CDP range 18820–18919 overlaps main's CDP range 18800–18899 | {fix}"
                ),
            ],
        );
        check(
            &[at("main", 18789), at("rescue", 18899)],
            &["rescue base 18899 lies in main's CDP range 18800–18899 \
               | move rescue to base 18900: omniclaw --profile rescue config set gateway.port 18900"],
        );
        check(&[at("main", 18789), at("rescue", 18789 + MIN_SPACING)], &[]);
        check(&[at("main", 18789), at("rescue", 19789)], &[]);
    }

    #[test]
    fn message_style() {
        let main = edit(at("main", 18789), |i| i.ports.canvas_port = Some(18900));
        let fix =
            "move rescue to base 18901: omniclaw --profile rescue config set gateway.port 18901";
        check(
            &[main, at("rescue", 18800)],
            &[
                &format!("rescue base 18800 lies in main's CDP range 18800–18899 | {fix}"),
                &format!(
                    "rescue browser control 18802 lies in main's CDP range 18800–18899 | {fix}"
                ),
                &format!("rescue canvas 18804 lies in main's CDP range 18800–18899 | {fix}"),
                &format!("rescue CDP range 18811–18910 overlaps main's canvas 18900 | {fix}"),
                &format!(
                    "rescue CDP range 18811–18910 overlaps main's CDP range 18800–18899 | {fix}"
                ),
            ],
        );
    }

    #[test]
    fn binds_do_not_separate_ports() {
        let lan = edit(at("main", 18789), |i| i.ports.bind = BindScope::Lan);
        check(
            &[
                lan,
                edit(at("rescue", 30000), |i| {
                    i.ports.telegram_webhook_port = Some(18789)
                }),
            ],
            &[
                "rescue Telegram webhook 18789 collides with main's base 18789 \
               | move rescue's Telegram webhook off main's base 18789: \
               omniclaw --profile rescue config set channels.telegram.webhookPort 18900",
            ],
        );
    }

    #[test]
    fn fixes_move_the_key_that_placed_the_surface() {
        check(
            &[
                at("main", 18789),
                edit(at("rescue", 19789), |i| i.ports.canvas_port = Some(18850)),
            ],
            &["rescue canvas 18850 lies in main's CDP range 18800–18899 \
               | move rescue's canvas off main's CDP range 18800–18899: \
               omniclaw --profile rescue config set canvasHost.port 18900"],
        );
        // A control port carries its CDP range along: both must fit.
        check(
            &[
                at("main", 18789),
                edit(at("rescue", 19789), |i| i.ports.control_port = Some(18700)),
            ],
            &[
                "rescue CDP range 18709–18808 overlaps main's base 18789 \
                 | move rescue's CDP range off main's base 18789: \
                 omniclaw --profile rescue config set browser.controlPort 18900",
                "rescue CDP range 18709–18808 overlaps main's browser control 18791 \
                 | move rescue's CDP range off main's browser control 18791: \
                 omniclaw --profile rescue config set browser.controlPort 18900",
                "rescue CDP range 18709–18808 overlaps main's canvas 18793 \
                 | move rescue's CDP range off main's canvas 18793: \
                 omniclaw --profile rescue config set browser.controlPort 18900",
                "rescue CDP range 18709–18808 overlaps main's CDP range 18800–18899 \
                 | move rescue's CDP range off main's CDP range 18800–18899: \
                 omniclaw --profile rescue config set browser.controlPort 18900",
            ],
        );
        check(
            &[at("rescue", 18789), edit(at("default", 30000), |i| i.ports.pinned_cdp = vec![("work".into(), 18791)])],
            &["default CDP port of browser profile work 18791 collides with rescue's browser control 18791 \
               | move default's CDP port of browser profile work off rescue's browser control 18791: \
               omniclaw config set browser.profiles.work.cdpPort 18900"],
        );
    }

    #[test]
    fn fixes_never_send_two_instances_to_the_same_place() {
        let conflicts = plan(&[at("main", 18789), at("a", 18789), at("b", 18789)]).conflicts;
        let mut suggested: Vec<(&str, Option<u16>)> = conflicts
            .iter()
            .filter_map(|c| match c {
                Conflict::PortOverlap { b, suggestion, .. } => Some((b.as_str(), *suggestion)),
                _ => None,
            })
            .collect();
        suggested.dedup();
        assert_eq!(suggested, [("a", Some(18900)), ("b", Some(19011))]);
    }

    #[test]
    fn foreign_instances_are_reserved_never_moved() {
        let expected = [
            "main base 18789 collides with openclaw:.openclaw's base 18789 \
             | move main to base 18900: omniclaw --profile main config set gateway.port 18900",
        ];
        let without_browser = |i: Instance| {
            edit(i, |i| {
                i.ports.browser_enabled = false;
                i.ports.canvas_enabled = false;
            })
        };
        let openclaw = without_browser(foreign("openclaw:.openclaw", 18789));
        let main = without_browser(at("main", 18789));
        check(&[openclaw.clone(), main.clone()], &expected);
        check(&[main, openclaw.clone()], &expected);
        check(&[openclaw, foreign("openclaw:.openclaw-work", 18789)], &[]);

        let shared = |i: Instance| edit(i, |i| i.state_dir = Some("/h/.openclaw".into()));
        check(
            &[
                shared(foreign("openclaw:.openclaw", 1024)),
                shared(foreign("openclaw:.openclaw-b", 2048)),
            ],
            &[],
        );
    }

    #[test]
    fn shared_paths_urls_and_tokens() {
        let paths = |i: Instance, dir: &str, workspace: &str| {
            edit(i, |i| {
                i.config_path = Some(PathBuf::from(format!("{dir}/omniclaw.json")));
                i.state_dir = Some(PathBuf::from(dir));
                i.workspace = Some(PathBuf::from(workspace));
            })
        };
        check(
            &[
                paths(
                    at("main", 18789),
                    "/h/.omniclaw-main",
                    "/h/.omniclaw/workspace-main",
                ),
                paths(
                    at("rescue", 19789),
                    "/h/.omniclaw-main",
                    "/h/.omniclaw/workspace-main/",
                ),
            ],
            &[
                "main and rescue share the config path /h/.omniclaw-main/omniclaw.json \
                 | give rescue its own config file: unset OMNICLAW_CONFIG_PATH for it so \
                 `omniclaw --profile rescue` uses ~/.omniclaw-rescue/omniclaw.json",
                "main and rescue share the state dir /h/.omniclaw-main \
                 | give rescue its own state dir: unset OMNICLAW_STATE_DIR for it so \
                 `omniclaw --profile rescue` uses ~/.omniclaw-rescue",
                "main and rescue share the workspace /h/.omniclaw/workspace-main \
                 | give rescue its own workspace: omniclaw --profile rescue config set \
                 agents.defaults.workspace ~/.omniclaw/workspace-rescue",
            ],
        );

        let url = |i: Instance, key: &str, url: &str| {
            edit(i, |i| i.cdp_urls.push((key.into(), url.into())))
        };
        check(
            &[
                url(at("main", 18789), "browser.cdpUrl", "http://127.0.0.1:9222"),
                url(
                    url(at("rescue", 19789), "browser.profiles.a.cdpUrl", "http://127.0.0.1:9333"),
                    "browser.profiles.work.cdpUrl",
                    "ws://localhost:9222/devtools/browser/x",
                ),
            ],
            &["main and rescue pin the same CDP endpoint http://127.0.0.1:9222 \
               (main: browser.cdpUrl, rescue: browser.profiles.work.cdpUrl) \
               | point browser.profiles.work.cdpUrl of rescue at a browser of its own (another debugging port), \
               or remove it so rescue starts its own browser in its CDP range"],
        );

        let token = |i: Instance, fp: &str| edit(i, |i| i.bot_token_fingerprint = Some(fp.into()));
        let plan_ = plan(&[
            token(at("main", 18789), "f00d"),
            token(at("rescue", 19789), "f00d"),
            token(at("x", 20789), "beef"),
        ]);
        let rendered: Vec<String> = plan_
            .conflicts
            .iter()
            .map(|c| format!("{c} | {}", c.fix()))
            .collect();
        assert_eq!(
            rendered,
            ["main and rescue use the same Telegram bot token \
              | create a separate bot for rescue with @BotFather and store its token: omniclaw --profile rescue onboard"]
        );
        assert!(
            !rendered[0].contains("f00d"),
            "a fingerprint is never shown"
        );
        assert_eq!(plan_.conflicts[0].instances(), ("main", "rescue"));
    }

    #[test]
    fn cdp_endpoints() {
        let cases = [
            ("http://127.0.0.1:9222", "loopback:9222"),
            ("ws://LOCALHOST:9222/devtools/browser/abc", "loopback:9222"),
            ("http://[::1]:9222/json", "loopback:9222"),
            (
                "https://user:pw@browser.example:443/x",
                "browser.example:443",
            ),
            ("https://browser.example", "browser.example:443"),
            ("http://browser.example/", "browser.example:80"),
            ("not a url/", "not a url"),
        ];
        for (url, want) in cases {
            assert_eq!(cdp_endpoint(url), want, "{url}");
        }
    }

    #[test]
    fn unknown_ports_reserve_nothing_and_broken_ones_still_count() {
        let unknown = edit(at("ghost", 18789), |i| {
            i.has_ports = false;
            i.state_dir = Some("/h/.omniclaw-main".into());
        });
        let main = edit(at("main", 18789), |i| {
            i.state_dir = Some("/h/.omniclaw-main".into())
        });
        let p = plan(&[main, unknown]);
        assert!(p.rows.iter().all(|r| r.instance == "main"));
        assert_eq!(
            p.conflicts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["main and ghost share the state dir /h/.omniclaw-main"]
        );

        let p = plan(&[at("main", 65420), at("high", 65530)]);
        assert_eq!(p.errors.len(), 1, "65420 + 110 still fits");
        assert_eq!(p.errors[0].instance, "high");
        assert_eq!(
            p.errors[0].to_string(),
            "high: base port 65530 leaves no room: the CDP range would end at 65640; choose a base of 65425 or lower"
        );
        // 65425 would overlap main: the fix offers the first free base
        // from the default up.
        assert_eq!(p.errors[0].suggestion, Some(DEFAULT_BASE));
        assert_eq!(
            p.errors[0].fix(),
            "move high to base 18789: omniclaw --profile high config set gateway.port 18789"
        );
        let alone = plan(&[at("high", 65500)]);
        assert_eq!(
            alone.errors[0].fix(),
            "move high to base 65425: omniclaw --profile high config set gateway.port 65425",
            "the highest base that fits, when it is free"
        );
        assert!(
            p.rows
                .iter()
                .all(|r| !(r.instance == "high" && r.surface == Surface::CdpRange)),
            "no row shows a range cut off at 65535: {:?}",
            p.rows
        );
        assert_eq!(
            p.conflicts.first().map(ToString::to_string).as_deref(),
            Some("high base 65530 lies in main's CDP range 65431–65530"),
            "a broken instance still shows its conflicts"
        );
        assert!(!p.is_clean());
        assert!(plan(&[at("main", 18789), at("rescue", 19789)]).is_clean());
    }

    #[test]
    fn snapshot_of_a_small_plan() {
        let main = edit(at("main", 18789), |i| i.ports.bind = BindScope::Lan);
        let rescue = edit(at("rescue", 18809), |i| {
            i.ports.browser_enabled = false;
            i.ports.telegram_webhook_port = Some(8443);
        });
        let p = plan(&[main, rescue, foreign("openclaw:.openclaw", 19789)]);
        let mut out = String::new();
        for row in &p.rows {
            out.push_str(&format!("{row}\n"));
        }
        for c in &p.conflicts {
            out.push_str(&format!("! {c}\n  fix: {}\n", c.fix()));
        }
        insta::assert_snapshot!(out, @r"
        main base 18789 lan (gateway.port)
        main browser control 18791 loopback (gateway.port)
        main canvas 18793 lan (gateway.port)
        main CDP range 18800–18899 loopback (gateway.port)
        rescue base 18809 loopback (gateway.port)
        rescue canvas 18813 loopback (gateway.port)
        rescue Telegram webhook 8443 loopback (channels.telegram.webhookPort)
        openclaw:.openclaw (foreign) base 19789 loopback (gateway.port)
        openclaw:.openclaw (foreign) browser control 19791 loopback (gateway.port)
        openclaw:.openclaw (foreign) canvas 19793 loopback (gateway.port)
        openclaw:.openclaw (foreign) CDP range 19800–19899 loopback (gateway.port)
        ! rescue base 18809 lies in main's CDP range 18800–18899
          fix: move rescue to base 18900: omniclaw --profile rescue config set gateway.port 18900
        ! rescue canvas 18813 lies in main's CDP range 18800–18899
          fix: move rescue to base 18900: omniclaw --profile rescue config set gateway.port 18900
        ");
    }

    /// The same overlaps, found by comparing every pair.
    fn naive(instances: &[Instance]) -> Vec<String> {
        let mut out = Vec::new();
        for (x, i) in instances.iter().enumerate() {
            for (y, j) in instances.iter().enumerate().skip(x + 1) {
                if i.foreign && j.foreign {
                    continue;
                }
                for p in derive(&i.ports).allocations {
                    for q in derive(&j.ports).allocations {
                        if p.range.overlaps(&q.range) {
                            let (x, y) = (x.min(y), x.max(y));
                            let (p, q) = (p.surface.to_string(), q.surface.to_string());
                            out.push(format!("{x} {y} {} {}", p.clone().min(q.clone()), p.max(q)));
                        }
                    }
                }
            }
        }
        out.sort();
        out
    }

    fn swept(instances: &[Instance]) -> Vec<String> {
        let index = |name: &str| {
            instances
                .iter()
                .position(|i| i.name == name)
                .unwrap_or(usize::MAX)
        };
        let mut out: Vec<String> = plan(instances)
            .conflicts
            .iter()
            .filter_map(|c| match c {
                Conflict::PortOverlap {
                    a,
                    a_surface,
                    b,
                    b_surface,
                    ..
                } => {
                    let (x, y) = (index(a).min(index(b)), index(a).max(index(b)));
                    let (p, q) = (a_surface.to_string(), b_surface.to_string());
                    Some(format!("{x} {y} {} {}", p.clone().min(q.clone()), p.max(q)))
                }
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    fn crowded() -> impl Strategy<Value = Instance> {
        let port = 18000u16..18700;
        (
            port.clone(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(port.clone()),
            proptest::option::of(port.clone()),
            proptest::option::of(port.clone()),
            proptest::collection::vec(port, 0..3),
        )
            .prop_map(|(base, foreign, canvas, control, range, webhook, pinned)| {
                let mut ports = PortInputs::with_base(base);
                ports.canvas_enabled = canvas;
                ports.control_port = control;
                ports.cdp_range_start = range;
                ports.telegram_webhook_port = webhook;
                ports.pinned_cdp = pinned
                    .into_iter()
                    .enumerate()
                    .map(|(n, p)| (format!("p{n}"), p))
                    .collect();
                Instance {
                    foreign,
                    ..Instance::new("", ports)
                }
            })
    }

    proptest! {
        #[test]
        fn sweep_finds_exactly_the_overlapping_pairs(mut instances in proptest::collection::vec(crowded(), 0..7)) {
            for (n, i) in instances.iter_mut().enumerate() {
                i.name = format!("i{n}");
            }
            prop_assert_eq!(swept(&instances), naive(&instances));
        }
    }
}
