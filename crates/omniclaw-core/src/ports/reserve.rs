//! Free places in the port space: where a new instance, or a surface that
//! must move, can go without touching anything another instance holds.
//!
//! Every instance reserves what it allocates plus the default footprint of
//! its base (`base ..= base + 110`), so enabling the browser or the canvas
//! later cannot run into a neighbour placed here. The reservations are
//! swept once into covered segments, each remembering whether one movable
//! group (everything one key of one instance places) covers it alone. A
//! search then looks at two things only: the free gaps between covered
//! stretches, skipping short ones through a "next longer gap" table, and
//! the few segments the moving group holds itself, which it may reuse.

use std::collections::BTreeMap;

use super::{
    allocate, derive, Derivation, Instance, Plan, PortInputs, PortKey, Row, DEFAULT_BASE,
    MIN_SPACING, RESCUE_BASE,
};
use crate::profile::Profile;

/// The lowest port a search wraps around to: below it ports are privileged.
const WRAP_START: u16 = 1024;
const TOP: u32 = u16::MAX as u32;

/// The lowest base at or above `preferred` whose default allocation, taken
/// as the whole block `base ..= base + 110`, is clear of every port any
/// instance allocates and of every instance's default footprint. When
/// nothing above `preferred` fits, the search wraps around and continues
/// from 1024. `None` when the port space is full.
///
/// Placing instances one after another this way never creates an overlap
/// with what was there, whatever overrides the earlier instances use.
pub fn suggest_base(instances: &[Instance], preferred: u16) -> Option<u16> {
    let derived: Vec<Derivation> = instances
        .iter()
        .map(|i| {
            if i.has_ports {
                derive(&i.ports)
            } else {
                Derivation::default()
            }
        })
        .collect();
    let reservations = Reservations::new(instances, &derived);
    reservations.find(preferred, u32::from(MIN_SPACING), None, &Claims::default())
}

/// A stretch of covered ports, `start ..= end`. `sole` is the group that
/// alone covers it, if only one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    start: u32,
    end: u32,
    sole: Option<u32>,
}

/// Ranges already promised to earlier suggestions, disjoint, by start.
#[derive(Debug, Default)]
pub(crate) struct Claims(BTreeMap<u32, u32>);

impl Claims {
    /// Promises `start ..= end`; it must be clear of every earlier claim,
    /// which every range [`Reservations::find`] returns is. Touching claims
    /// are merged, so a search hops over a run of them at once.
    pub(crate) fn claim(&mut self, start: u32, end: u32) {
        let mut start = start;
        let mut end = end;
        if let Some((&before, &before_end)) = self.0.range(..start).next_back() {
            if before_end + 1 == start {
                start = before;
            }
        }
        if let Some(after_end) = self.0.remove(&(end + 1)) {
            end = after_end;
        }
        self.0.insert(start, end);
    }

    /// The end of the last claim overlapping `start ..= end`, if any.
    fn hit(&self, start: u32, end: u32) -> Option<u32> {
        // Claims are disjoint: if any overlaps, the last one starting at or
        // before `end` does.
        let (_, &last) = self.0.range(..=end).next_back()?;
        (last >= start).then_some(last)
    }
}

/// Every port any instance reserves, grouped by what moves it.
#[derive(Debug)]
pub(crate) struct Reservations {
    /// Per instance: its keys and their group ids. A group is everything
    /// one key of one instance places; moving the key moves the group.
    groups: Vec<Vec<(PortKey, u32)>>,
    /// Covered segments, sorted, disjoint.
    segments: Vec<Segment>,
    /// Uncovered stretches in 1..=65535, sorted.
    gaps: Vec<(u32, u32)>,
    /// For each gap, the index of the next gap that is longer (or
    /// `gaps.len()`): short gaps are skipped in one step.
    longer: Vec<usize>,
    /// Per group: the indices of the segments it alone covers.
    solo: Vec<Vec<usize>>,
}

impl Reservations {
    pub(crate) fn new(instances: &[Instance], derived: &[Derivation]) -> Reservations {
        let mut groups: Vec<Vec<(PortKey, u32)>> = vec![Vec::new(); instances.len()];
        let mut count_groups = 0u32;
        let mut events: Vec<(u32, bool, u32)> = Vec::new();
        for (index, (instance, d)) in instances.iter().zip(derived).enumerate() {
            if !instance.has_ports {
                continue;
            }
            let mut reserve = |key: &PortKey, start: u32, end: u32| {
                let own = &mut groups[index];
                let group = match own.iter().find(|(k, _)| k == key) {
                    Some(&(_, group)) => group,
                    None => {
                        own.push((key.clone(), count_groups));
                        count_groups += 1;
                        count_groups - 1
                    }
                };
                events.push((start, true, group));
                events.push((end + 1, false, group));
            };
            let base = u32::from(instance.ports.base);
            if base != 0 {
                reserve(
                    &PortKey::GatewayPort,
                    base,
                    (base + u32::from(MIN_SPACING) - 1).min(TOP),
                );
            }
            for a in &d.allocations {
                reserve(&a.key, u32::from(a.range.start()), u32::from(a.range.end()));
            }
        }
        // At one position, ends before starts: back-to-back ranges do not
        // overlap.
        events.sort_unstable();

        let mut segments: Vec<Segment> = Vec::new();
        // Count, sum and sum of squares of the covering group ids: all ids
        // are equal exactly when count * sumsq == sum * sum.
        let (mut count, mut sum, mut sumsq) = (0u128, 0u128, 0u128);
        let mut from = 0u32;
        for (pos, starts, group) in events {
            if pos > from && count > 0 {
                let sole = (count * sumsq == sum * sum)
                    .then(|| u32::try_from(sum / count).unwrap_or(u32::MAX));
                push_segment(
                    &mut segments,
                    Segment {
                        start: from,
                        end: pos - 1,
                        sole,
                    },
                );
            }
            from = pos;
            let g = u128::from(group);
            if starts {
                (count, sum, sumsq) = (count + 1, sum + g, sumsq + g * g);
            } else {
                (count, sum, sumsq) = (count - 1, sum - g, sumsq - g * g);
            }
        }

        let mut solo = vec![Vec::new(); count_groups as usize];
        for (i, s) in segments.iter().enumerate() {
            if let Some(list) = s.sole.and_then(|g| solo.get_mut(g as usize)) {
                list.push(i);
            }
        }

        let mut gaps = Vec::new();
        let mut covered_to = 0u32;
        for s in &segments {
            if s.start > covered_to + 1 {
                gaps.push((covered_to + 1, s.start - 1));
            }
            covered_to = covered_to.max(s.end);
        }
        if covered_to < TOP {
            gaps.push((covered_to + 1, TOP));
        }
        let mut longer = vec![gaps.len(); gaps.len()];
        let mut stack: Vec<usize> = Vec::new();
        for (i, gap) in gaps.iter().enumerate().rev() {
            while stack
                .last()
                .is_some_and(|&j| gap_len(gaps[j]) <= gap_len(*gap))
            {
                stack.pop();
            }
            if let Some(&j) = stack.last() {
                longer[i] = j;
            }
            stack.push(i);
        }

        Reservations {
            groups,
            segments,
            gaps,
            longer,
            solo,
        }
    }

    /// The group of `instance`'s `key`, if it reserves anything.
    pub(crate) fn group(&self, instance: usize, key: &PortKey) -> Option<u32> {
        let own = self.groups.get(instance)?;
        own.iter().find(|(k, _)| k == key).map(|&(_, group)| group)
    }

    /// The lowest start at or above `preferred` (else, wrapping, at or above
    /// 1024) of `len` ports that are free, or reserved by `moving` alone
    /// (the group being moved leaves its old place), and clear of every
    /// claim.
    pub(crate) fn find(
        &self,
        preferred: u16,
        len: u32,
        moving: Option<u32>,
        claims: &Claims,
    ) -> Option<u16> {
        if len == 0 || len > TOP {
            return None;
        }
        let first = u32::from(preferred.max(1));
        let wrap = u32::from(WRAP_START);
        self.first_fit(first, TOP, len, moving, claims)
            .or_else(|| {
                (first > wrap)
                    .then(|| self.first_fit(wrap, first - 1, len, moving, claims))
                    .flatten()
            })
            .and_then(|start| u16::try_from(start).ok())
    }

    fn first_fit(
        &self,
        from: u32,
        max_start: u32,
        len: u32,
        moving: Option<u32>,
        claims: &Claims,
    ) -> Option<u32> {
        let mut from = from;
        loop {
            let start = self.fit(from, len, moving).filter(|&s| s <= max_start)?;
            match claims.hit(start, start + len - 1) {
                Some(end) => from = end + 1,
                None => return Some(start),
            }
        }
    }

    /// The lowest start at or above `from` of `len` ports free for
    /// `moving`, claims aside.
    fn fit(&self, from: u32, len: u32, moving: Option<u32>) -> Option<u32> {
        let fits = |(start, end): (u32, u32)| {
            let start = start.max(from);
            (start + len - 1 <= end).then_some(start)
        };
        // In a free gap: the one holding `from`, else the first long one.
        let k = self.gaps.partition_point(|&(_, end)| end < from);
        let mut best = self.gaps.get(k).and_then(|&gap| fits(gap)).or_else(|| {
            let mut j = k + 1;
            while self.gaps.get(j).is_some_and(|&gap| gap_len(gap) < len) {
                j = self.longer[j];
            }
            self.gaps.get(j).map(|&(start, _)| start)
        });
        // Across the moving group's own segments and the gaps around them.
        if let Some(g) = moving {
            for &i in self.solo.get(g as usize).into_iter().flatten() {
                if let Some(start) = fits(self.window(i, g)) {
                    best = Some(best.map_or(start, |b| b.min(start)));
                }
            }
        }
        best
    }

    /// The longest run of ports free for group `g` around its segment `i`.
    fn window(&self, i: usize, g: u32) -> (u32, u32) {
        let free_for_g = |s: &Segment| s.sole == Some(g);
        let (mut j, mut start) = (i, self.segments[i].start);
        while let Some(prev) = j.checked_sub(1).map(|p| self.segments[p]) {
            start = start.min(prev.end + 1);
            if !free_for_g(&prev) {
                break;
            }
            (j, start) = (j - 1, prev.start);
        }
        if j == 0 {
            start = 1;
        }
        let (mut j, mut end) = (i, self.segments[i].end);
        while let Some(next) = self.segments.get(j + 1) {
            end = end.max(next.start - 1);
            if !free_for_g(next) {
                break;
            }
            (j, end) = (j + 1, next.end);
        }
        if j + 1 == self.segments.len() {
            end = TOP;
        }
        (start, end)
    }
}

fn gap_len((start, end): (u32, u32)) -> u32 {
    end - start + 1
}

/// Appends `s`, merging it into the previous segment when they touch and
/// have the same sole group.
fn push_segment(segments: &mut Vec<Segment>, s: Segment) {
    match segments.last_mut() {
        Some(prev) if prev.end + 1 == s.start && prev.sole == s.sole => prev.end = s.end,
        _ => segments.push(s),
    }
}

/// Why [`free_base`] found no base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoFreeBase {
    /// The instances leave no slot in the port space.
    NoSlot,
    /// Every slot tried had a port that is held right now.
    AllHeld,
}

/// The preferred base of a new profile: 19789 for `rescue`, 18789 otherwise.
pub fn preferred_base(profile: &Profile) -> u16 {
    match profile {
        Profile::Named(n) if n.as_str() == "rescue" => RESCUE_BASE,
        _ => DEFAULT_BASE,
    }
}

/// Like [`suggest_base`] from `preferred`, and also clear of every port
/// `held` says a running process listens on: each held port hit is reserved
/// and the search goes on. A bounded number of rounds keeps a machine full
/// of listeners from looping forever.
pub fn free_base(
    instances: &[Instance],
    preferred: u16,
    held: impl Fn(u16) -> bool,
) -> Result<u16, NoFreeBase> {
    let mut reserved = instances.to_vec();
    let mut start = preferred;
    for _ in 0..64 {
        let base = suggest_base(&reserved, start).ok_or(NoFreeBase::NoSlot)?;
        let allocs = allocate(&PortInputs::with_base(base)).map_err(|_| NoFreeBase::NoSlot)?;
        let hit: Vec<u16> = allocs
            .iter()
            .flat_map(|a| a.range.start()..=a.range.end())
            .filter(|p| held(*p))
            .collect();
        if hit.is_empty() {
            return Ok(base);
        }
        reserved.extend(hit.into_iter().map(|port| {
            let mut busy = PortInputs::with_base(port);
            busy.browser_enabled = false;
            busy.canvas_enabled = false;
            let mut i = Instance::new(format!("port {port} in use"), busy);
            i.foreign = true;
            i
        }));
        start = base;
    }
    Err(NoFreeBase::AllHeld)
}

/// A value of `key` for the instance `name` that puts everything the key
/// places clear of every other instance in `plan` and of every port `held`
/// says a running process listens on right now, searching from `from`.
/// A move of `gateway.port` takes the whole slot of a new base
/// ([`free_base`]); another key moves only its own ports, to the first gap
/// at or above `from`, else the first from 1024. `None` when the instance
/// is not in `instances`, the key is not set, or nothing is free.
///
/// What `ports` and `doctor` print as the fix of a held port, and what the
/// dashboard's one-click fix writes: a fix whose port is taken would be
/// refused by the edit, and a suggested fix that fails is no fix.
pub fn free_place(
    plan: &Plan,
    instances: &[Instance],
    name: &str,
    key: &PortKey,
    from: u16,
    held: impl Fn(u16) -> bool,
) -> Option<u16> {
    let me = instances.iter().find(|i| i.name == name)?;
    if *key == PortKey::GatewayPort {
        let others: Vec<Instance> = instances
            .iter()
            .filter(|i| i.name != name)
            .cloned()
            .collect();
        return free_base(&others, from, held).ok();
    }
    // Everything the key places, from its value to its farthest port.
    let value = key.value_in(&me.ports)?;
    let mine = |row: &&Row| row.instance == name && row.key == *key;
    let len = plan
        .rows
        .iter()
        .filter(mine)
        .map(|row| u32::from(row.range.end()).saturating_sub(u32::from(value)) + 1)
        .max()
        .unwrap_or(1);
    let mut taken: Vec<(u32, u32)> = plan
        .rows
        .iter()
        .filter(|row| !mine(row))
        .map(|row| (u32::from(row.range.start()), u32::from(row.range.end())))
        .collect();
    taken.sort_unstable();
    let clear = |mut start: u32| loop {
        start = first_gap(&taken, start, len)?;
        // Past the last held port of the gap, else it is the place.
        match (start..start + len)
            .rev()
            .find(|p| u16::try_from(*p).is_ok_and(&held))
        {
            Some(busy) => start = busy + 1,
            None => return u16::try_from(start).ok(),
        }
    };
    clear(u32::from(from)).or_else(|| clear(u32::from(WRAP_START)))
}

/// The lowest start at or above `from` of `len` ports that touch no range
/// of `taken` (sorted by start) and end at 65535 at the latest.
fn first_gap(taken: &[(u32, u32)], from: u32, len: u32) -> Option<u32> {
    let mut start = from;
    for &(s, e) in taken {
        if e < start {
            continue;
        }
        if s >= start + len {
            break;
        }
        start = e + 1;
    }
    (start + len - 1 <= TOP).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_place_moves_one_key_past_held_ports() {
        let main = Instance::new("main", PortInputs::with_base(30_000));
        let mut rescue = Instance::new("rescue", PortInputs::with_base(31_000));
        rescue.ports.canvas_port = Some(30_004);
        let instances = [main.clone(), rescue.clone()];
        let overlapping = plan(&instances);
        assert!(
            !overlapping.conflicts.is_empty(),
            "rescue's canvas is main's"
        );
        let canvas = PortKey::CanvasHostPort;
        let place = |held: &dyn Fn(u16) -> bool| {
            free_place(&overlapping, &instances, "rescue", &canvas, 30_004, held)
        };
        let clear = |port: u16| {
            let mut moved = rescue.clone();
            moved.ports.canvas_port = Some(port);
            plan(&[main.clone(), moved]).conflicts.is_empty()
        };
        let free = place(&|_| false).expect("a place");
        assert!(free > 30_004 && clear(free), "{free}");
        // Another process listens there: the fix moves on, still clear of main.
        let next = place(&|p| p == free).expect("a place");
        assert!(next > free && clear(next), "{next} after {free}");
        assert_eq!(place(&|_| true), None, "every port held");
        // A move of the base takes a whole free slot, as `free_base` does.
        let held = |p: u16| p == 30_200;
        assert_eq!(
            free_place(
                &overlapping,
                &instances,
                "rescue",
                &PortKey::GatewayPort,
                30_000,
                held
            ),
            free_base(std::slice::from_ref(&main), 30_000, held).ok()
        );
        // Nothing to move: an unknown instance, a key that is not set.
        assert_eq!(
            free_place(&overlapping, &instances, "nobody", &canvas, 30_004, |_| {
                false
            }),
            None
        );
        let control = PortKey::BrowserControlPort;
        assert_eq!(
            free_place(&overlapping, &instances, "rescue", &control, 30_002, |_| {
                false
            }),
            None
        );
    }

    #[test]
    fn gaps() {
        let taken = [(10, 19), (15, 25), (30, 30), (40, 49)];
        assert_eq!(first_gap(&taken, 1, 5), Some(1));
        assert_eq!(first_gap(&taken, 8, 5), Some(31));
        assert_eq!(first_gap(&taken, 20, 4), Some(26));
        assert_eq!(first_gap(&taken, 20, 5), Some(31));
        assert_eq!(first_gap(&taken, 20, 10), Some(50));
        assert_eq!(first_gap(&[(65530, 65535)], 65500, 31), None);
        assert_eq!(first_gap(&[(65530, 65535)], 65500, 30), Some(65500));
    }

    #[test]
    fn a_free_base_skips_ports_held_right_now() {
        use crate::profile::Profile;
        let rescue = Profile::parse("rescue").expect("valid");
        assert_eq!(preferred_base(&rescue), RESCUE_BASE);
        assert_eq!(preferred_base(&Profile::Default), DEFAULT_BASE);
        assert_eq!(free_base(&[], DEFAULT_BASE, |_| false), Ok(DEFAULT_BASE));
        // The canvas port of the preferred slot is taken by some process.
        let held = DEFAULT_BASE + 4;
        let base = free_base(&[], DEFAULT_BASE, |p| p == held).expect("a base");
        assert!(base > DEFAULT_BASE);
        let allocs = allocate(&PortInputs::with_base(base)).expect("allocates");
        assert!(allocs.iter().all(|a| !a.range.contains(held)));
        assert_eq!(
            free_base(&[], DEFAULT_BASE, |_| true),
            Err(NoFreeBase::AllHeld),
            "every port held"
        );
    }
    use crate::ports::{allocate, plan, Conflict, PortInputs};
    use proptest::prelude::*;

    fn at(base: u16) -> Instance {
        Instance::new(format!("at{base}"), PortInputs::with_base(base))
    }

    fn edit(mut instance: Instance, f: impl FnOnce(&mut PortInputs)) -> Instance {
        f(&mut instance.ports);
        instance
    }

    #[track_caller]
    fn check(instances: &[Instance], preferred: u16, expected: Option<u16>) {
        assert_eq!(
            suggest_base(instances, preferred),
            expected,
            "preferred {preferred}"
        );
    }

    #[test]
    fn suggestions() {
        check(&[], 18789, Some(18789));
        check(&[], 0, Some(1));
        check(&[at(18789)], 18789, Some(18789 + MIN_SPACING));
        check(&[at(18789)], 19789, Some(19789));
        check(&[at(18789)], 18678, Some(18678)); // its block ends at 18788
        check(&[at(18789)], 18679, Some(18900));
        check(&[at(18789), at(18900)], 18789, Some(19011));
        check(
            &[edit(at(18789), |p| p.canvas_port = Some(18950))],
            18789,
            Some(18951),
        );
        // A disabled browser still keeps its default footprint free.
        check(
            &[edit(at(18789), |p| p.browser_enabled = false)],
            18789,
            Some(18900),
        );
        check(
            &[Instance {
                has_ports: false,
                ..at(18789)
            }],
            18789,
            Some(18789),
        );
        // Nothing fits above: wrap around to 1024.
        check(&[at(65400)], 65425, Some(1024));
        check(&[at(65400), at(1024)], 65425, Some(1135));
        check(&[at(65400)], 65426, Some(1024));
    }

    #[test]
    fn a_full_port_space_has_no_suggestion() {
        let full: Vec<Instance> = (0..656u16).map(|n| at(1 + n * 100)).collect();
        check(&full, 18789, None);
        check(&full, 1, None);
        // One missing instance leaves 89 free ports: too few.
        let one_gap: Vec<Instance> = full
            .iter()
            .filter(|i| i.ports.base != 30001)
            .cloned()
            .collect();
        check(&one_gap, 18789, None);
        // Two leave 30012..=30200: enough, from above and by wrapping around.
        let two_gaps: Vec<Instance> = one_gap
            .into_iter()
            .filter(|i| i.ports.base != 30101)
            .collect();
        check(&two_gaps, 18789, Some(30012));
        check(&two_gaps, 40000, Some(30012));
    }

    #[test]
    fn segments_know_their_sole_owner() {
        let instances = [at(100), edit(at(1000), |p| p.canvas_port = Some(150))];
        let derived: Vec<Derivation> = instances.iter().map(|i| derive(&i.ports)).collect();
        let r = Reservations::new(&instances, &derived);
        let first_base = r.group(0, &PortKey::GatewayPort);
        let canvas = r.group(1, &PortKey::CanvasHostPort);
        let got: Vec<(u32, u32, Option<u32>)> = r
            .segments
            .iter()
            .map(|s| (s.start, s.end, s.sole))
            .collect();
        assert_eq!(
            got[..3],
            [
                (100, 149, first_base),
                (150, 150, None),
                (151, 210, first_base)
            ]
        );
        assert_eq!(r.gaps, [(1, 99), (211, 999), (1111, 65535)]);
        let none = Claims::default();
        // Moving the canvas: its own port is free for it, the other's are not.
        assert_eq!(r.find(150, 1, canvas, &none), Some(211));
        assert_eq!(
            r.find(150, 1, first_base, &none),
            Some(151),
            "the canvas is not the first's to give away"
        );
        assert_eq!(r.find(100, 111, first_base, &none), Some(151));
        assert_eq!(r.find(100, 50, first_base, &none), Some(100));
        assert_eq!(
            r.find(1, 99, first_base, &none),
            Some(1),
            "its own segment joins the gap below"
        );
        assert_eq!(
            r.find(1, 149, first_base, &none),
            Some(1),
            "1..=149 is gap plus its own"
        );
        assert_eq!(
            r.find(1, 150, first_base, &none),
            Some(151),
            "150 is the canvas"
        );
        assert_eq!(
            r.find(1, 849, first_base, &none),
            Some(151),
            "151..=999 is its own plus a gap"
        );
        assert_eq!(r.find(1, 850, first_base, &none), Some(1111));
        let mut claims = Claims::default();
        claims.claim(151, 300);
        assert_eq!(r.find(100, 111, first_base, &claims), Some(301));
        claims.claim(401, 500);
        claims.claim(301, 400);
        assert_eq!(claims.0.len(), 1, "touching claims merge: {claims:?}");
        assert_eq!(r.find(100, 111, first_base, &claims), Some(501));
        assert_eq!(
            r.find(65500, 111, None, &claims),
            Some(1111),
            "wraps around to the first fit from 1024"
        );
    }

    #[test]
    fn short_gaps_are_skipped() {
        // Gaps of 10, 5, 20, 30 and the rest between blocks of 100.
        let bases = [1000u16, 1121, 1237, 1368, 1509];
        let instances: Vec<Instance> = bases
            .iter()
            .map(|&b| edit(at(b), |p| p.browser_enabled = false))
            .collect();
        let derived: Vec<Derivation> = instances.iter().map(|i| derive(&i.ports)).collect();
        let r = Reservations::new(&instances, &derived);
        let none = Claims::default();
        let cases = [
            (1000, 5, Some(1111)),
            (1000, 11, Some(1348)),
            (1000, 20, Some(1348)),
            (1000, 21, Some(1479)),
            (1000, 31, Some(1620)),
        ];
        for (from, len, want) in cases {
            assert_eq!(r.find(from, len, None, &none), want, "len {len}");
        }
    }

    fn existing() -> impl Strategy<Value = PortInputs> {
        let port = 1024u16..=65535;
        (
            1024u16..65000,
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(port.clone()),
            proptest::option::of(port.clone()),
            proptest::option::of(port.clone()),
            proptest::option::of(port.clone()),
            proptest::collection::vec(port, 0..3),
        )
            .prop_map(
                |(base, browser, canvas, control, range, canvas_port, webhook, pinned)| {
                    let mut p = PortInputs::with_base(base);
                    p.browser_enabled = browser;
                    p.canvas_enabled = canvas;
                    p.control_port = control;
                    p.cdp_range_start = range;
                    p.canvas_port = canvas_port;
                    p.telegram_webhook_port = webhook;
                    p.pinned_cdp = pinned
                        .into_iter()
                        .enumerate()
                        .map(|(n, port)| (format!("p{n}"), port))
                        .collect();
                    p
                },
            )
    }

    proptest! {
        #[test]
        fn placed_instances_never_overlap_anything(
            earlier in proptest::collection::vec((existing(), any::<bool>()), 0..8),
            preferred in proptest::collection::vec(1u16..=65535, 1..8),
        ) {
            let mut instances: Vec<Instance> = earlier
                .into_iter()
                .enumerate()
                .map(|(n, (ports, foreign))| Instance { foreign, ..Instance::new(format!("old{n}"), ports) })
                .collect();
            for (n, want) in preferred.into_iter().enumerate() {
                let Some(base) = suggest_base(&instances, want) else { continue };
                prop_assert!(base >= want || base >= WRAP_START, "{base} for {want}");
                prop_assert!(allocate(&PortInputs::with_base(base)).is_ok(), "{base} overflows");
                instances.push(Instance::new(format!("new{n}"), PortInputs::with_base(base)));
            }
            for conflict in plan(&instances).conflicts {
                if let Conflict::PortOverlap { a, b, .. } = &conflict {
                    prop_assert!(!a.starts_with("new") && !b.starts_with("new"), "{conflict}");
                }
            }
        }
    }
}
