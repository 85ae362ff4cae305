//! The port plan: which ports one gateway instance needs, and where they
//! collide with another instance's.
//!
//! A gateway listens on more than its base port. From one [`PortInputs`]
//! (filled by the caller from the config) [`allocate`] derives every surface
//! with its real range: the gateway itself, the browser control service, the
//! canvas host, the 100-port CDP range of the browser profiles, pinned CDP
//! ports and the Telegram webhook. [`plan`] lays out many instances side by
//! side and reports every overlap, shared path, shared CDP endpoint and
//! shared bot token; [`suggest_base`] finds a base whose whole allocation is
//! free.
//!
//! Collisions are computed on these real ranges, never on a rule of thumb:
//! two bases 20 apart collide, because the first one's CDP range reaches 110
//! ports above its base. Nothing here does IO; whether a port is actually
//! held by some process is a question for the OS adapters.

mod plan;
mod reserve;

use std::fmt;

pub use plan::{new_conflicts, plan, Conflict, Instance, PathKind, Plan, PortProblem, Row};
pub use reserve::{free_base, free_place, preferred_base, suggest_base, NoFreeBase};

/// Default base port of the default profile (and of `main` when free).
pub const DEFAULT_BASE: u16 = 18789;

/// Base port offered to the `rescue` profile when free: a thousand ports
/// away from [`DEFAULT_BASE`], far beyond anything `main` derives.
pub const RESCUE_BASE: u16 = 19789;

/// Smallest distance between two bases that keeps their default allocations
/// apart.
///
/// With the default derivation an instance at base `A` uses `A` (gateway),
/// `A+2` (browser control), `A+4` (canvas) and the CDP range `A+2+9 ..=
/// A+2+108`, so its highest port is `A+110`. The next base must therefore be
/// at least `A+111`. The manual's "leave 20 ports" is not enough; leaving 200
/// or more gives room for later overrides.
pub const MIN_SPACING: u16 = 111;

/// Offset of the browser control port from the base when not pinned.
const CONTROL_OFFSET: u16 = 2;
/// Offset of the canvas port from the base when not pinned.
const CANVAS_OFFSET: u16 = 4;
/// Offset of the first CDP port from the browser control port.
const CDP_OFFSET: u16 = 9;
/// Number of ports in a CDP range.
const CDP_PORTS: u16 = 100;

/// Where the gateway (and the canvas host, which follows it) listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BindScope {
    /// `gateway.bind: loopback` (the default).
    Loopback,
    /// `gateway.bind: lan`: all interfaces.
    Lan,
    /// `gateway.bind: custom` with `gateway.customBindHost`.
    Custom(String),
}

impl BindScope {
    /// Whether only this host can reach a surface bound this way.
    pub fn is_loopback(&self) -> bool {
        matches!(self, BindScope::Loopback)
    }
}

impl fmt::Display for BindScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindScope::Loopback => f.write_str("loopback"),
            BindScope::Lan => f.write_str("lan"),
            BindScope::Custom(host) => write!(f, "custom {host}"),
        }
    }
}

/// An inclusive range of ports, never empty. A single port is a range whose
/// start and end are equal and prints as the bare number; a longer range
/// prints with an en dash (`18800–18899`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// The range `start ..= end`, or `None` when `start > end`.
    pub fn new(start: u16, end: u16) -> Option<PortRange> {
        (start <= end).then_some(PortRange { start, end })
    }

    /// The one-port range `port ..= port`.
    pub fn single(port: u16) -> PortRange {
        PortRange {
            start: port,
            end: port,
        }
    }

    /// First port of the range.
    pub fn start(&self) -> u16 {
        self.start
    }

    /// Last port of the range (inclusive).
    pub fn end(&self) -> u16 {
        self.end
    }

    /// Number of ports in the range (at least 1).
    pub fn len(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    /// Always false: a range holds at least one port. Present because a
    /// `len` without it reads as an oversight.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether the range is a single port.
    pub fn is_single(&self) -> bool {
        self.start == self.end
    }

    /// Whether `port` lies in the range.
    pub fn contains(&self, port: u16) -> bool {
        self.start <= port && port <= self.end
    }

    /// Whether `other` lies entirely in this range.
    pub fn covers(&self, other: &PortRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    /// Whether the two ranges share at least one port.
    pub fn overlaps(&self, other: &PortRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}\u{2013}{}", self.start, self.end)
        }
    }
}

/// One listening surface of a gateway instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Surface {
    /// The gateway WebSocket + HTTP port: the base port.
    Gateway,
    /// The browser control service.
    BrowserControl,
    /// The canvas host.
    Canvas,
    /// The automatic CDP range of the browser profiles.
    CdpRange,
    /// The pinned CDP port of the named browser profile.
    CdpPinned(String),
    /// The Telegram webhook listener (webhook mode only).
    TelegramWebhook,
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Surface::Gateway => f.write_str("base"),
            Surface::BrowserControl => f.write_str("browser control"),
            Surface::Canvas => f.write_str("canvas"),
            Surface::CdpRange => f.write_str("CDP range"),
            Surface::CdpPinned(profile) => write!(f, "CDP port of browser profile {profile}"),
            Surface::TelegramWebhook => f.write_str("Telegram webhook"),
        }
    }
}

/// The config key whose value places a surface: changing it moves the
/// surface. Derived surfaces follow the key they are derived from (a
/// browser control port without `browser.controlPort` follows
/// `gateway.port`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortKey {
    /// `gateway.port` (also set by `--port` and `OMNICLAW_GATEWAY_PORT`).
    GatewayPort,
    /// `browser.controlPort`.
    BrowserControlPort,
    /// `browser.cdpPortRangeStart`.
    CdpPortRangeStart,
    /// `canvasHost.port`.
    CanvasHostPort,
    /// `browser.profiles.<name>.cdpPort`.
    BrowserProfileCdpPort(String),
    /// `channels.telegram.webhookPort`.
    TelegramWebhookPort,
}

impl PortKey {
    /// The value this key has in `inputs`, if it is set (the base port is
    /// always set).
    pub fn value_in(&self, inputs: &PortInputs) -> Option<u16> {
        match self {
            PortKey::GatewayPort => Some(inputs.base),
            PortKey::BrowserControlPort => inputs.control_port,
            PortKey::CdpPortRangeStart => inputs.cdp_range_start,
            PortKey::CanvasHostPort => inputs.canvas_port,
            PortKey::BrowserProfileCdpPort(name) => inputs
                .pinned_cdp
                .iter()
                .find(|(profile, _)| profile == name)
                .map(|(_, port)| *port),
            PortKey::TelegramWebhookPort => inputs.telegram_webhook_port,
        }
    }
}

impl fmt::Display for PortKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortKey::GatewayPort => f.write_str("gateway.port"),
            PortKey::BrowserControlPort => f.write_str("browser.controlPort"),
            PortKey::CdpPortRangeStart => f.write_str("browser.cdpPortRangeStart"),
            PortKey::CanvasHostPort => f.write_str("canvasHost.port"),
            PortKey::BrowserProfileCdpPort(name) => write!(f, "browser.profiles.{name}.cdpPort"),
            PortKey::TelegramWebhookPort => f.write_str("channels.telegram.webhookPort"),
        }
    }
}

/// What one instance asks for, as read from its config (and flags). The
/// caller fills it; this module never reads a config itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInputs {
    /// The base port (`--port` > `OMNICLAW_GATEWAY_PORT` > `gateway.port`).
    pub base: u16,
    /// `gateway.bind`; the canvas host binds the same way.
    pub bind: BindScope,
    /// `browser.enabled`: when false, no browser control port and no CDP
    /// ports are allocated.
    pub browser_enabled: bool,
    /// `browser.controlPort`, else base + 2.
    pub control_port: Option<u16>,
    /// `browser.cdpPortRangeStart`, else control + 9.
    pub cdp_range_start: Option<u16>,
    /// `browser.profiles.<name>.cdpPort`, as (profile name, port).
    pub pinned_cdp: Vec<(String, u16)>,
    /// `canvasHost.enabled`: when false, no canvas port is allocated.
    pub canvas_enabled: bool,
    /// `canvasHost.port`, else base + 4.
    pub canvas_port: Option<u16>,
    /// `channels.telegram.webhookPort`, only in webhook mode.
    pub telegram_webhook_port: Option<u16>,
}

impl PortInputs {
    /// The defaults around `base`: loopback bind, browser and canvas on,
    /// every derived port derived, nothing pinned, no webhook.
    pub fn with_base(base: u16) -> PortInputs {
        PortInputs {
            base,
            bind: BindScope::Loopback,
            browser_enabled: true,
            control_port: None,
            cdp_range_start: None,
            pinned_cdp: Vec::new(),
            canvas_enabled: true,
            canvas_port: None,
            telegram_webhook_port: None,
        }
    }
}

/// One surface of one instance with the ports it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// Which surface.
    pub surface: Surface,
    /// Its ports.
    pub range: PortRange,
    /// Whether it listens on loopback only (else on the gateway's bind).
    pub loopback_only: bool,
    /// The config key that places it.
    pub key: PortKey,
}

/// Why the ports of one instance cannot be allocated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// A port derived from `key` would lie past 65535.
    #[error("{}", overflow_message(.surface, .key, *.base, *.needed, *.max_base))]
    DerivedOverflow {
        /// The surface that does not fit.
        surface: Surface,
        /// The key it is derived from.
        key: PortKey,
        /// The value of that key.
        base: u16,
        /// The last port the surface would need.
        needed: u32,
        /// The highest value of `key` that fits.
        max_base: u16,
    },
    /// A port set to 0.
    #[error(
        "{key} is 0: the {surface} needs a fixed port; set {key} to a port between 1 and 65535"
    )]
    ZeroPort {
        /// The surface the port belongs to.
        surface: Surface,
        /// The key that is 0.
        key: PortKey,
    },
    /// Two surfaces of the same instance share ports. `b` is the one an
    /// explicit key put there, and `key` is how to move it.
    #[error(
        "the {b} {b_range} {} the {a} {a_range} of the same instance; \
         change {key} so the {b} stays clear of {a_range}",
        relation(.b_range, .a_range)
    )]
    SelfOverlap {
        /// The surface that stays.
        a: Surface,
        /// Its ports.
        a_range: PortRange,
        /// The surface to move.
        b: Surface,
        /// Its ports.
        b_range: PortRange,
        /// The key that moves `b`.
        key: PortKey,
    },
}

impl PortError {
    /// The config key to change: the one whose value does not fit, is 0,
    /// or places the surface that must move.
    pub fn key(&self) -> &PortKey {
        match self {
            PortError::DerivedOverflow { key, .. }
            | PortError::ZeroPort { key, .. }
            | PortError::SelfOverlap { key, .. } => key,
        }
    }
}

fn overflow_message(
    surface: &Surface,
    key: &PortKey,
    base: u16,
    needed: u32,
    max_base: u16,
) -> String {
    let what = match key {
        PortKey::GatewayPort => "base port".to_string(),
        other => other.to_string(),
    };
    let choose = match key {
        PortKey::GatewayPort => "base".to_string(),
        other => other.to_string(),
    };
    let reach = if *surface == Surface::CdpRange {
        format!("the {surface} would end at {needed}")
    } else {
        format!("the {surface} would be at port {needed}")
    };
    format!("{what} {base} leaves no room: {reach}; choose a {choose} of {max_base} or lower")
}

/// How `subject` sits against `other`, for messages: "collides with" for
/// two single ports, "lies in" when `subject` is inside the range `other`,
/// else "overlaps".
pub(crate) fn relation(subject: &PortRange, other: &PortRange) -> &'static str {
    if subject.is_single() && other.is_single() {
        "collides with"
    } else if other.covers(subject) {
        "lies in"
    } else {
        "overlaps"
    }
}

/// The ports of one instance, every surface with its range, in surface
/// order (gateway, browser control, canvas, CDP range, pinned CDP ports in
/// input order, Telegram webhook). Disabled surfaces allocate nothing.
///
/// Fails on the first problem: a port of 0, a derived port past 65535, or
/// two surfaces of the instance sharing ports. A pinned CDP port inside the
/// instance's own CDP range is fine: the browser control service hands out
/// range ports around pinned ones.
pub fn allocate(inputs: &PortInputs) -> Result<Vec<Allocation>, PortError> {
    let derivation = derive(inputs);
    match derivation.errors.into_iter().next() {
        Some(error) => Err(error),
        None => Ok(derivation.allocations),
    }
}

/// Every allocation that can be made and every problem found, for callers
/// that must go on with a broken instance (the plan). Ports past 65535 are
/// cut off at 65535; surfaces placed by a key of 0 are left out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Derivation {
    pub(crate) allocations: Vec<Allocation>,
    pub(crate) errors: Vec<PortError>,
    /// One entry per allocation: whether it was cut off at 65535 (its
    /// range is then not the one the surface would need).
    pub(crate) cut: Vec<bool>,
}

/// Where a surface sits before it is checked: `offset` ports above the
/// value `port` of `key`.
#[derive(Clone)]
struct Anchor {
    key: PortKey,
    port: u16,
    offset: u16,
}

impl Anchor {
    fn new(key: PortKey, port: u16) -> Anchor {
        Anchor {
            key,
            port,
            offset: 0,
        }
    }

    fn plus(&self, offset: u16) -> Anchor {
        Anchor {
            offset: self.offset + offset,
            ..self.clone()
        }
    }
}

/// A surface before it is checked: `len` ports from its anchor.
struct Placement {
    surface: Surface,
    at: Anchor,
    len: u16,
    loopback_only: bool,
}

impl Placement {
    fn one(surface: Surface, at: Anchor, loopback_only: bool) -> Placement {
        Placement {
            surface,
            at,
            len: 1,
            loopback_only,
        }
    }

    fn first(&self) -> u32 {
        u32::from(self.at.port) + u32::from(self.at.offset)
    }

    fn last(&self) -> u32 {
        self.first() + u32::from(self.len) - 1
    }
}

pub(crate) fn derive(inputs: &PortInputs) -> Derivation {
    let placements = placements(inputs);
    let mut errors = Vec::new();
    let mut broken: Vec<&PortKey> = Vec::new();

    // Checks per key, in placement order, one error per key.
    for p in &placements {
        let key = &p.at.key;
        if broken.contains(&key) {
            continue;
        }
        if p.at.port == 0 {
            errors.push(PortError::ZeroPort {
                surface: p.surface.clone(),
                key: key.clone(),
            });
            broken.push(key);
            continue;
        }
        let widest = placements
            .iter()
            .filter(|q| q.at.key == *key)
            .max_by_key(|q| q.last())
            .unwrap_or(p);
        if widest.last() > u32::from(u16::MAX) {
            // A key places at most 110 ports above its value (base + 2 + 108),
            // so the reach always fits in u16.
            let reach =
                u16::try_from(widest.last() - u32::from(widest.at.port)).unwrap_or(u16::MAX);
            errors.push(PortError::DerivedOverflow {
                surface: widest.surface.clone(),
                key: key.clone(),
                base: p.at.port,
                needed: widest.last(),
                max_base: u16::MAX - reach,
            });
            broken.push(key);
        }
    }

    let (allocations, cut): (Vec<Allocation>, Vec<bool>) = placements
        .iter()
        .filter(|p| p.at.port != 0)
        .filter_map(|p| {
            let start = u16::try_from(p.first()).ok()?;
            let end = u16::try_from(p.last()).unwrap_or(u16::MAX);
            let allocation = Allocation {
                surface: p.surface.clone(),
                range: PortRange { start, end },
                loopback_only: p.loopback_only,
                key: p.at.key.clone(),
            };
            Some((allocation, p.last() > u32::from(u16::MAX)))
        })
        .unzip();

    for (i, a) in allocations.iter().enumerate() {
        for (j, b) in allocations.iter().enumerate().skip(i + 1) {
            // A range cut at 65535 already has its error (the root cause);
            // what its stump overlaps is no second one.
            if cut[i] || cut[j] || !a.range.overlaps(&b.range) || pinned_in_range(a, b) {
                continue;
            }
            // Move the one an explicit key placed; derived surfaces never
            // overlap each other. With both explicit, move the later one.
            let (stay, go) = if b.key == PortKey::GatewayPort {
                (b, a)
            } else {
                (a, b)
            };
            errors.push(PortError::SelfOverlap {
                a: stay.surface.clone(),
                a_range: stay.range,
                b: go.surface.clone(),
                b_range: go.range,
                key: go.key.clone(),
            });
        }
    }

    Derivation {
        allocations,
        errors,
        cut,
    }
}

/// A pinned CDP port inside the instance's own CDP range is allowed.
fn pinned_in_range(a: &Allocation, b: &Allocation) -> bool {
    matches!(
        (&a.surface, &b.surface),
        (Surface::CdpRange, Surface::CdpPinned(_)) | (Surface::CdpPinned(_), Surface::CdpRange)
    )
}

/// Every enabled surface in surface order, placed per the table of the
/// design: explicit keys win, else the port is derived from the base (or,
/// for the CDP range, from the browser control port).
fn placements(inputs: &PortInputs) -> Vec<Placement> {
    let gateway_loopback = inputs.bind.is_loopback();
    let base = Anchor::new(PortKey::GatewayPort, inputs.base);
    let mut out = vec![Placement::one(
        Surface::Gateway,
        base.clone(),
        gateway_loopback,
    )];

    let control = inputs.browser_enabled.then_some(match inputs.control_port {
        Some(port) => Anchor::new(PortKey::BrowserControlPort, port),
        None => base.plus(CONTROL_OFFSET),
    });
    if let Some(control) = &control {
        out.push(Placement::one(
            Surface::BrowserControl,
            control.clone(),
            true,
        ));
    }
    if inputs.canvas_enabled {
        let at = match inputs.canvas_port {
            Some(port) => Anchor::new(PortKey::CanvasHostPort, port),
            None => base.plus(CANVAS_OFFSET),
        };
        out.push(Placement::one(Surface::Canvas, at, gateway_loopback));
    }
    if let Some(control) = control {
        let at = match inputs.cdp_range_start {
            Some(start) => Anchor::new(PortKey::CdpPortRangeStart, start),
            None => control.plus(CDP_OFFSET),
        };
        out.push(Placement {
            surface: Surface::CdpRange,
            at,
            len: CDP_PORTS,
            loopback_only: true,
        });
        for (profile, port) in &inputs.pinned_cdp {
            let at = Anchor::new(PortKey::BrowserProfileCdpPort(profile.clone()), *port);
            out.push(Placement::one(
                Surface::CdpPinned(profile.clone()),
                at,
                true,
            ));
        }
    }
    if let Some(port) = inputs.telegram_webhook_port {
        let at = Anchor::new(PortKey::TelegramWebhookPort, port);
        out.push(Placement::one(Surface::TelegramWebhook, at, true));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(allocations: &[Allocation]) -> Vec<String> {
        allocations
            .iter()
            .map(|a| {
                let bind = if a.loopback_only { "loopback" } else { "open" };
                format!("{} {} {bind} ({})", a.surface, a.range, a.key)
            })
            .collect()
    }

    #[track_caller]
    fn check(inputs: PortInputs, expected: Result<&[&str], &str>) {
        let got = allocate(&inputs);
        match (got, expected) {
            (Ok(allocations), Ok(want)) => {
                assert_eq!(render(&allocations), want, "inputs: {inputs:?}")
            }
            (Err(error), Err(want)) => assert_eq!(error.to_string(), want, "inputs: {inputs:?}"),
            (got, want) => panic!("inputs: {inputs:?}\n got: {got:?}\nwant: {want:?}"),
        }
    }

    fn with(base: u16, edit: impl FnOnce(&mut PortInputs)) -> PortInputs {
        let mut inputs = PortInputs::with_base(base);
        edit(&mut inputs);
        inputs
    }

    #[test]
    fn derivation() {
        check(
            PortInputs::with_base(18789),
            Ok(&[
                "base 18789 loopback (gateway.port)",
                "browser control 18791 loopback (gateway.port)",
                "canvas 18793 loopback (gateway.port)",
                "CDP range 18800–18899 loopback (gateway.port)",
            ]),
        );
        check(
            with(18789, |i| i.bind = BindScope::Lan),
            Ok(&[
                "base 18789 open (gateway.port)",
                "browser control 18791 loopback (gateway.port)",
                "canvas 18793 open (gateway.port)",
                "CDP range 18800–18899 loopback (gateway.port)",
            ]),
        );
        check(
            with(19001, |i| {
                i.control_port = Some(20000);
                i.canvas_port = Some(21000);
            }),
            Ok(&[
                "base 19001 loopback (gateway.port)",
                "browser control 20000 loopback (browser.controlPort)",
                "canvas 21000 loopback (canvasHost.port)",
                "CDP range 20009–20108 loopback (browser.controlPort)",
            ]),
        );
        check(
            with(19001, |i| {
                i.control_port = Some(20000);
                i.cdp_range_start = Some(30000);
            }),
            Ok(&[
                "base 19001 loopback (gateway.port)",
                "browser control 20000 loopback (browser.controlPort)",
                "canvas 19005 loopback (gateway.port)",
                "CDP range 30000–30099 loopback (browser.cdpPortRangeStart)",
            ]),
        );
        check(
            with(18789, |i| {
                i.pinned_cdp = vec![("work".into(), 18850), ("home".into(), 40000)];
                i.telegram_webhook_port = Some(8443);
            }),
            Ok(&[
                "base 18789 loopback (gateway.port)",
                "browser control 18791 loopback (gateway.port)",
                "canvas 18793 loopback (gateway.port)",
                "CDP range 18800–18899 loopback (gateway.port)",
                "CDP port of browser profile work 18850 loopback (browser.profiles.work.cdpPort)",
                "CDP port of browser profile home 40000 loopback (browser.profiles.home.cdpPort)",
                "Telegram webhook 8443 loopback (channels.telegram.webhookPort)",
            ]),
        );
    }

    #[test]
    fn disabled_surfaces_allocate_nothing() {
        let off = |browser: bool, canvas: bool| {
            with(18789, move |i| {
                i.browser_enabled = browser;
                i.canvas_enabled = canvas;
                i.control_port = Some(1);
                i.pinned_cdp = vec![("work".into(), 2)];
                i.canvas_port = Some(3);
            })
        };
        check(
            off(false, true),
            Ok(&[
                "base 18789 loopback (gateway.port)",
                "canvas 3 loopback (canvasHost.port)",
            ]),
        );
        check(
            off(true, false),
            Ok(&[
                "base 18789 loopback (gateway.port)",
                "browser control 1 loopback (browser.controlPort)",
                "CDP range 10–109 loopback (browser.controlPort)",
                "CDP port of browser profile work 2 loopback (browser.profiles.work.cdpPort)",
            ]),
        );
        check(
            off(false, false),
            Ok(&["base 18789 loopback (gateway.port)"]),
        );
    }

    #[test]
    fn overflow_at_the_boundary() {
        let top = 65535 - 110;
        check(
            PortInputs::with_base(top),
            Ok(&[
                "base 65425 loopback (gateway.port)",
                "browser control 65427 loopback (gateway.port)",
                "canvas 65429 loopback (gateway.port)",
                "CDP range 65436–65535 loopback (gateway.port)",
            ]),
        );
        check(
            PortInputs::with_base(top + 1),
            Err("base port 65426 leaves no room: the CDP range would end at 65536; choose a base of 65425 or lower"),
        );
        check(
            PortInputs::with_base(65530),
            Err("base port 65530 leaves no room: the CDP range would end at 65640; choose a base of 65425 or lower"),
        );
        // Without a browser the canvas (base + 4) is the highest port.
        check(
            with(65531, |i| i.browser_enabled = false),
            Ok(&[
                "base 65531 loopback (gateway.port)",
                "canvas 65535 loopback (gateway.port)",
            ]),
        );
        check(
            with(65532, |i| i.browser_enabled = false),
            Err("base port 65532 leaves no room: the canvas would be at port 65536; choose a base of 65531 or lower"),
        );
        check(
            with(65535, |i| {
                i.browser_enabled = false;
                i.canvas_enabled = false;
            }),
            Ok(&["base 65535 loopback (gateway.port)"]),
        );
        check(
            with(18789, |i| i.control_port = Some(65428)),
            Err("browser.controlPort 65428 leaves no room: the CDP range would end at 65536; choose a browser.controlPort of 65427 or lower"),
        );
        check(
            with(18789, |i| i.cdp_range_start = Some(65437)),
            Err("browser.cdpPortRangeStart 65437 leaves no room: the CDP range would end at 65536; choose a browser.cdpPortRangeStart of 65436 or lower"),
        );
        check(
            with(18789, |i| i.cdp_range_start = Some(65436)),
            Ok(&[
                "base 18789 loopback (gateway.port)",
                "browser control 18791 loopback (gateway.port)",
                "canvas 18793 loopback (gateway.port)",
                "CDP range 65436–65535 loopback (browser.cdpPortRangeStart)",
            ]),
        );
    }

    #[test]
    fn zero_ports() {
        check(
            PortInputs::with_base(0),
            Err("gateway.port is 0: the base needs a fixed port; set gateway.port to a port between 1 and 65535"),
        );
        check(
            with(18789, |i| i.canvas_port = Some(0)),
            Err("canvasHost.port is 0: the canvas needs a fixed port; set canvasHost.port to a port between 1 and 65535"),
        );
        check(
            with(18789, |i| i.pinned_cdp = vec![("work".into(), 0)]),
            Err("browser.profiles.work.cdpPort is 0: the CDP port of browser profile work needs a fixed port; \
                 set browser.profiles.work.cdpPort to a port between 1 and 65535"),
        );
        check(
            with(18789, |i| i.telegram_webhook_port = Some(0)),
            Err(
                "channels.telegram.webhookPort is 0: the Telegram webhook needs a fixed port; \
                 set channels.telegram.webhookPort to a port between 1 and 65535",
            ),
        );
    }

    #[test]
    fn overlaps_inside_one_instance() {
        check(
            with(18789, |i| i.canvas_port = Some(18850)),
            Err(
                "the canvas 18850 lies in the CDP range 18800–18899 of the same instance; \
                 change canvasHost.port so the canvas stays clear of 18800–18899",
            ),
        );
        check(
            with(18789, |i| i.control_port = Some(18793)),
            Err(
                "the browser control 18793 collides with the canvas 18793 of the same instance; \
                 change browser.controlPort so the browser control stays clear of 18793",
            ),
        );
        check(
            with(18789, |i| i.cdp_range_start = Some(18700)),
            Err(
                "the CDP range 18700–18799 overlaps the base 18789 of the same instance; \
                 change browser.cdpPortRangeStart so the CDP range stays clear of 18789",
            ),
        );
        check(
            with(18789, |i| i.pinned_cdp = vec![("a".into(), 30000), ("b".into(), 30000)]),
            Err("the CDP port of browser profile b 30000 collides with the CDP port of browser profile a 30000 \
                 of the same instance; change browser.profiles.b.cdpPort so the CDP port of browser profile b \
                 stays clear of 30000"),
        );
        check(
            with(18789, |i| i.telegram_webhook_port = Some(18789)),
            Err(
                "the Telegram webhook 18789 collides with the base 18789 of the same instance; \
                 change channels.telegram.webhookPort so the Telegram webhook stays clear of 18789",
            ),
        );
    }

    #[test]
    fn a_range_past_65535_is_one_error_not_also_an_overlap() {
        let d = derive(&with(65535, |i| {
            i.canvas_enabled = false;
            i.control_port = Some(65500);
        }));
        let errors: Vec<String> = d.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("65608"), "{errors:?}");
    }

    #[test]
    fn lenient_derivation_keeps_what_fits() {
        let d = derive(&with(65530, |i| i.canvas_port = Some(0)));
        assert_eq!(
            render(&d.allocations),
            [
                "base 65530 loopback (gateway.port)",
                "browser control 65532 loopback (gateway.port)"
            ]
        );
        assert_eq!(d.errors.len(), 2, "{:?}", d.errors);
        assert!(matches!(
            d.errors[0],
            PortError::DerivedOverflow {
                max_base: 65425,
                needed: 65640,
                ..
            }
        ));
        assert!(matches!(
            d.errors[1],
            PortError::ZeroPort {
                key: PortKey::CanvasHostPort,
                ..
            }
        ));

        let d = derive(&PortInputs::with_base(65500));
        assert_eq!(
            d.allocations[3].range,
            PortRange {
                start: 65511,
                end: 65535
            },
            "cut off at 65535"
        );
    }

    #[test]
    fn ranges() {
        let r = |s, e| PortRange::new(s, e).expect("valid range");
        assert_eq!(PortRange::new(2, 1), None);
        assert_eq!(r(18800, 18899).to_string(), "18800–18899");
        assert_eq!(PortRange::single(18789).to_string(), "18789");
        assert_eq!(r(1, 65535).len(), 65535);
        assert!(r(10, 20).overlaps(&r(20, 30)) && !r(10, 19).overlaps(&r(20, 30)));
        assert!(r(10, 20).covers(&r(12, 20)) && !r(10, 20).covers(&r(9, 12)));
        assert_eq!(relation(&r(5, 5), &r(5, 5)), "collides with");
        assert_eq!(relation(&r(5, 5), &r(1, 9)), "lies in");
        assert_eq!(relation(&r(1, 9), &r(5, 5)), "overlaps");
        assert_eq!(
            BindScope::Custom("10.0.0.2".into()).to_string(),
            "custom 10.0.0.2"
        );
    }

    #[test]
    fn key_values() {
        let inputs = with(18789, |i| {
            i.control_port = Some(20000);
            i.pinned_cdp = vec![("work".into(), 21000)];
        });
        let cases = [
            (PortKey::GatewayPort, Some(18789)),
            (PortKey::BrowserControlPort, Some(20000)),
            (PortKey::CdpPortRangeStart, None),
            (PortKey::BrowserProfileCdpPort("work".into()), Some(21000)),
            (PortKey::BrowserProfileCdpPort("home".into()), None),
        ];
        for (key, want) in cases {
            assert_eq!(key.value_in(&inputs), want, "{key}");
        }
    }
}
