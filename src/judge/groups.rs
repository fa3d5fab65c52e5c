//! Verdicts over many instances: a Redis Cluster judged as a whole from
//! its shards (as discovery last read them) and its nodes' own verdicts
//! and CLUSTER INFO. A pure function of its inputs, so the HTTP side can
//! judge at request time from the store and tests can judge by hand.

use crate::judge::outcome::Status;
use crate::wire::cluster::{ClusterInfo, CLUSTER_SLOTS};
use crate::wire::info::Role;

/// Why a cluster (or group) is not ok. Declaration order breaks ties
/// between reasons of equal status: the earlier is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupReason {
    NoReachableNode,
    ClusterStateFail,
    SlotsNotCovered,
    SlotsPfail,
    ReplicasMissing,
    NodeDown,
    NoMaster,
    SentinelOdown,
    MultipleMasters,
    SentinelQuorumLost,
    ReplicaWrongMaster,
    FailoverInProgress,
}

impl GroupReason {
    /// The status this reason implies.
    pub fn status(self) -> Status {
        match self {
            GroupReason::NoReachableNode
            | GroupReason::ClusterStateFail
            | GroupReason::NoMaster
            | GroupReason::SentinelOdown => Status::Down,
            GroupReason::SlotsNotCovered
            | GroupReason::MultipleMasters
            | GroupReason::SentinelQuorumLost => Status::Critical,
            GroupReason::SlotsPfail
            | GroupReason::ReplicasMissing
            | GroupReason::NodeDown
            | GroupReason::ReplicaWrongMaster
            | GroupReason::FailoverInProgress => Status::Degraded,
        }
    }

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupReason::NoReachableNode => "no_reachable_node",
            GroupReason::ClusterStateFail => "cluster_state_fail",
            GroupReason::SlotsNotCovered => "slots_not_covered",
            GroupReason::SlotsPfail => "slots_pfail",
            GroupReason::ReplicasMissing => "replicas_missing",
            GroupReason::NodeDown => "node_down",
            GroupReason::NoMaster => "no_master",
            GroupReason::MultipleMasters => "multiple_masters",
            GroupReason::ReplicaWrongMaster => "replica_wrong_master",
            GroupReason::SentinelOdown => "sentinel_odown",
            GroupReason::SentinelQuorumLost => "sentinel_quorum_lost",
            GroupReason::FailoverInProgress => "failover_in_progress",
        }
    }
}

/// One shard as discovery read it: node names, not addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Inclusive slot ranges, sorted.
    pub slots: Vec<(u16, u16)>,
    pub master: Option<String>,
    pub replicas: Vec<String>,
}

/// What the verdict needs of one node.
#[derive(Clone, Debug)]
pub struct NodeState {
    pub name: String,
    /// The node's own current status (staleness applied).
    pub status: Status,
    /// The role its latest INFO reported.
    pub role: Option<Role>,
    /// Its latest CLUSTER INFO.
    pub cluster: Option<ClusterInfo>,
}

/// A shard in the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardVerdict {
    pub slots: Vec<(u16, u16)>,
    pub master: Option<String>,
    pub replicas: Vec<String>,
    /// Replicas that answer their polls (not down).
    pub replicas_online: u32,
}

/// A cluster judged as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterVerdict {
    pub status: Status,
    /// Every reason that applies, most severe first.
    pub reasons: Vec<GroupReason>,
    /// CLUSTER INFO as the freshest reachable node reports it.
    pub info: Option<ClusterInfo>,
    pub nodes_down: Vec<String>,
    pub shards: Vec<ShardVerdict>,
}

/// Judge a cluster. `min_replicas` is the least number of online replicas
/// every shard should have.
pub fn judge_cluster(shards: &[Shard], nodes: &[NodeState], min_replicas: u32) -> ClusterVerdict {
    let up = |n: &&NodeState| n.status != Status::Down;
    let by_name = |name: &str| nodes.iter().find(|n| n.name == name);
    let mut reasons = Vec::new();
    let mut nodes_down: Vec<String> = nodes
        .iter()
        .filter(|n| n.status == Status::Down)
        .map(|n| n.name.clone())
        .collect();
    nodes_down.sort();
    // The freshest view: the reachable node with the highest epoch.
    let info = nodes
        .iter()
        .filter(up)
        .filter_map(|n| n.cluster)
        .max_by_key(|c| c.current_epoch.unwrap_or(0));
    if nodes.iter().filter(up).count() == 0 {
        reasons.push(GroupReason::NoReachableNode);
    }
    // Masters that answer, and how many of them say the cluster failed.
    let reachable_masters: Vec<&NodeState> = nodes
        .iter()
        .filter(up)
        .filter(|n| n.role == Some(Role::Master))
        .filter(|n| {
            n.cluster
                .is_some_and(|c| c.slots_assigned.unwrap_or(0) > 0 || c.size.unwrap_or(0) > 0)
        })
        .collect();
    let failing = reachable_masters
        .iter()
        .filter(|n| n.cluster.and_then(|c| c.state_ok) == Some(false))
        .count();
    if !reachable_masters.is_empty() && failing * 2 > reachable_masters.len() {
        reasons.push(GroupReason::ClusterStateFail);
    }
    // Any reachable node that sees slots unassigned or failed.
    let views: Vec<ClusterInfo> = nodes.iter().filter(up).filter_map(|n| n.cluster).collect();
    if views.iter().any(|c| {
        c.slots_assigned.is_some_and(|a| a < CLUSTER_SLOTS) || c.slots_fail.is_some_and(|f| f > 0)
    }) {
        reasons.push(GroupReason::SlotsNotCovered);
    }
    if views.iter().any(|c| c.slots_pfail.is_some_and(|p| p > 0)) {
        reasons.push(GroupReason::SlotsPfail);
    }
    let shards: Vec<ShardVerdict> = shards
        .iter()
        .map(|s| ShardVerdict {
            slots: s.slots.clone(),
            master: s.master.clone(),
            replicas: s.replicas.clone(),
            replicas_online: s
                .replicas
                .iter()
                .filter(|r| by_name(r).is_some_and(|n| n.status != Status::Down))
                .count() as u32,
        })
        .collect();
    if shards
        .iter()
        .any(|s| !s.slots.is_empty() && s.replicas_online < min_replicas)
    {
        reasons.push(GroupReason::ReplicasMissing);
    }
    if !nodes_down.is_empty() && !reasons.contains(&GroupReason::NoReachableNode) {
        reasons.push(GroupReason::NodeDown);
    }
    reasons.sort_by_key(|r| (std::cmp::Reverse(r.status()), *r as u8));
    ClusterVerdict {
        status: reasons.first().map_or(Status::Ok, |r| r.status()),
        reasons,
        info,
        nodes_down,
        shards,
    }
}

/// What the group verdict needs of one member.
#[derive(Clone, Debug)]
pub struct MemberState {
    pub name: String,
    pub status: Status,
    /// Where the member listens, when that is an IP address and port.
    pub addr: Option<std::net::SocketAddr>,
    pub role: Option<Role>,
    /// A replica's master, as its INFO names it (IP addresses only).
    pub follows: Option<std::net::SocketAddr>,
    pub link_up: Option<bool>,
}

/// A replication group judged as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupVerdict {
    pub status: Status,
    pub reasons: Vec<GroupReason>,
    /// The member that is the master, when exactly one is.
    pub master: Option<String>,
    /// Every member reporting role master.
    pub masters: Vec<String>,
    /// Replicas: (name, status, master link up).
    pub replicas: Vec<(String, Status, Option<bool>)>,
}

/// What the sentinels say of a group's master.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SentinelFacts {
    /// The master's address as the sentinels name it.
    pub master: Option<std::net::SocketAddr>,
    /// The sentinels agree the master is down (`o_down`).
    pub odown: bool,
    pub quorum: u32,
    /// Sentinels that answer or are not flagged down, this one included.
    pub reachable: u32,
    /// Why `SENTINEL CKQUORUM` failed, when it did.
    pub quorum_error: Option<String>,
    pub failover_in_progress: bool,
}

/// Judge a Sentinel-managed group: the static rules, with the master the
/// sentinels name as the group's master, plus the sentinels' own state.
pub fn judge_sentinel_group(
    members: &[MemberState],
    min_replicas: u32,
    facts: &SentinelFacts,
) -> GroupVerdict {
    let named = facts
        .master
        .and_then(|addr| members.iter().find(|m| m.addr == Some(addr)));
    let mut v = judge_group(members, min_replicas);
    let named_is_master =
        named.is_some_and(|m| m.status != Status::Down && m.role == Some(Role::Master));
    if named_is_master {
        v.master = named.map(|m| m.name.clone());
        // The static check found one master; with two, the named one wins
        // and the split is still reported.
        v.reasons.retain(|r| *r != GroupReason::NoMaster);
    } else if !v.reasons.contains(&GroupReason::NoMaster) {
        v.reasons.push(GroupReason::NoMaster);
        v.master = None;
    }
    if facts.odown {
        v.reasons.push(GroupReason::SentinelOdown);
    }
    if facts.quorum_error.is_some() || facts.reachable < facts.quorum {
        v.reasons.push(GroupReason::SentinelQuorumLost);
    }
    if facts.failover_in_progress {
        v.reasons.push(GroupReason::FailoverInProgress);
    }
    v.reasons
        .sort_by_key(|r| (std::cmp::Reverse(r.status()), *r as u8));
    v.reasons.dedup();
    v.status = v.reasons.first().map_or(Status::Ok, |r| r.status());
    v
}

/// Judge a static replication group: one master, every replica following
/// it with its link up, at least `min_replicas` of them online.
pub fn judge_group(members: &[MemberState], min_replicas: u32) -> GroupVerdict {
    let up = |m: &&MemberState| m.status != Status::Down;
    let masters: Vec<&MemberState> = members
        .iter()
        .filter(up)
        .filter(|m| m.role == Some(Role::Master))
        .collect();
    let mut reasons = Vec::new();
    match masters.len() {
        0 => reasons.push(GroupReason::NoMaster),
        1 => {}
        _ => reasons.push(GroupReason::MultipleMasters),
    }
    let master = (masters.len() == 1).then(|| masters[0]);
    let replicas: Vec<&MemberState> = members
        .iter()
        .filter(|m| m.role == Some(Role::Replica))
        .collect();
    let replica_up = |r: &&&MemberState| r.status != Status::Down;
    if let Some(master_addr) = master.and_then(|m| m.addr) {
        if replicas
            .iter()
            .filter(replica_up)
            .any(|r| r.follows.is_some_and(|f| f != master_addr))
        {
            reasons.push(GroupReason::ReplicaWrongMaster);
        }
    }
    let online = replicas
        .iter()
        .filter(replica_up)
        .filter(|r| r.link_up == Some(true))
        .count() as u32;
    if master.is_some() && online < min_replicas {
        reasons.push(GroupReason::ReplicasMissing);
    }
    if members.iter().any(|m| m.status == Status::Down) && !masters.is_empty() {
        reasons.push(GroupReason::NodeDown);
    }
    reasons.sort_by_key(|r| (std::cmp::Reverse(r.status()), *r as u8));
    GroupVerdict {
        status: reasons.first().map_or(Status::Ok, |r| r.status()),
        reasons,
        master: master.map(|m| m.name.clone()),
        masters: masters.iter().map(|m| m.name.clone()).collect(),
        replicas: replicas
            .iter()
            .map(|r| (r.name.clone(), r.status, r.link_up))
            .collect(),
    }
}

/// Slot ranges as the contract writes them: `0-5460,5462`.
pub fn slots_text(slots: &[(u16, u16)]) -> String {
    slots
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(state_ok: bool, assigned: u32, pfail: u32, epoch: u64) -> ClusterInfo {
        ClusterInfo {
            state_ok: Some(state_ok),
            slots_assigned: Some(assigned),
            slots_ok: Some(assigned - pfail),
            slots_pfail: Some(pfail),
            slots_fail: Some(0),
            known_nodes: Some(6),
            size: Some(3),
            current_epoch: Some(epoch),
        }
    }

    fn node(name: &str, status: Status, role: Role, cluster: Option<ClusterInfo>) -> NodeState {
        NodeState {
            name: name.into(),
            status,
            role: Some(role),
            cluster,
        }
    }

    /// Three shards m1..m3 with one replica each, every node ok.
    fn healthy() -> (Vec<Shard>, Vec<NodeState>) {
        let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
        let shards = (1..=3)
            .map(|i| Shard {
                slots: vec![ranges[i - 1]],
                master: Some(format!("m{i}")),
                replicas: vec![format!("r{i}")],
            })
            .collect();
        let ok = Some(info(true, 16384, 0, 6));
        let mut nodes = Vec::new();
        for i in 1..=3 {
            nodes.push(node(&format!("m{i}"), Status::Ok, Role::Master, ok));
            nodes.push(node(&format!("r{i}"), Status::Ok, Role::Replica, ok));
        }
        (shards, nodes)
    }

    fn names(v: &ClusterVerdict) -> Vec<&'static str> {
        v.reasons.iter().map(|r| r.as_str()).collect()
    }

    #[test]
    fn a_healthy_cluster_is_ok_with_its_shards() {
        let (shards, nodes) = healthy();
        let v = judge_cluster(&shards, &nodes, 1);
        assert_eq!((v.status, names(&v)), (Status::Ok, vec![]));
        assert!(v.shards.iter().all(|s| s.replicas_online == 1));
        assert_eq!(slots_text(&v.shards[0].slots), "0-5460");
        assert_eq!(v.info.unwrap().state_ok, Some(true));
    }

    #[test]
    fn a_dead_master_is_node_down_and_its_shard_misses_a_replica_after_failover() {
        let (mut shards, mut nodes) = healthy();
        nodes[0].status = Status::Down; // m1
        let v = judge_cluster(&shards, &nodes, 1);
        assert_eq!((v.status, names(&v)), (Status::Degraded, vec!["node_down"]));
        assert_eq!(v.nodes_down, vec!["m1".to_string()]);
        // r1 promoted: the shard now has no online replica.
        shards[0] = Shard {
            slots: vec![(0, 5460)],
            master: Some("r1".into()),
            replicas: vec!["m1".into()],
        };
        nodes[1].role = Some(Role::Master);
        let v = judge_cluster(&shards, &nodes, 1);
        assert_eq!(names(&v), vec!["replicas_missing", "node_down"]);
        assert_eq!(
            judge_cluster(&shards, &nodes, 0).reasons,
            vec![GroupReason::NodeDown]
        );
    }

    #[test]
    fn slot_problems_and_failed_state_follow_the_nodes_reports() {
        let (shards, mut nodes) = healthy();
        nodes[2].cluster = Some(info(false, 16381, 0, 6));
        let v = judge_cluster(&shards, &nodes, 1);
        assert_eq!(
            (v.status, names(&v)),
            (Status::Critical, vec!["slots_not_covered"])
        );
        // A majority of masters reporting fail is down.
        for i in [0, 2, 4] {
            nodes[i].cluster = Some(info(false, 16381, 0, 6));
        }
        let v = judge_cluster(&shards, &nodes, 1);
        assert_eq!(v.status, Status::Down);
        assert_eq!(names(&v)[0], "cluster_state_fail");
        let (shards, mut nodes) = healthy();
        nodes[3].cluster = Some(info(true, 16384, 5461, 7));
        let v = judge_cluster(&shards, &nodes, 1);
        assert_eq!(
            (v.status, names(&v)),
            (Status::Degraded, vec!["slots_pfail"])
        );
        assert_eq!(v.info.unwrap().current_epoch, Some(7), "the freshest view");
    }

    fn member(name: &str, port: u16, role: Role, follows: Option<u16>) -> MemberState {
        let at = |p: u16| std::net::SocketAddr::from(([127, 0, 0, 1], p));
        MemberState {
            name: name.into(),
            status: Status::Ok,
            addr: Some(at(port)),
            role: Some(role),
            follows: follows.map(at),
            link_up: follows.map(|_| true),
        }
    }

    #[test]
    fn a_group_wants_one_master_followed_by_its_replicas() {
        let healthy = vec![
            member("a", 1, Role::Master, None),
            member("b", 2, Role::Replica, Some(1)),
            member("c", 3, Role::Replica, Some(1)),
        ];
        let v = judge_group(&healthy, 1);
        assert_eq!(
            (v.status, v.master.as_deref(), v.replicas.len()),
            (Status::Ok, Some("a"), 2)
        );
        // A replica promoted by hand: two masters.
        let mut split = healthy.clone();
        split[1] = member("b", 2, Role::Master, None);
        let v = judge_group(&split, 1);
        assert_eq!(v.status, Status::Critical);
        assert_eq!(v.reasons[0], GroupReason::MultipleMasters);
        assert_eq!(v.masters, vec!["a".to_string(), "b".to_string()]);
        // A replica following another server.
        let mut astray = healthy.clone();
        astray[2] = member("c", 3, Role::Replica, Some(9));
        let v = judge_group(&astray, 1);
        assert_eq!(
            (v.status, v.reasons.clone()),
            (Status::Degraded, vec![GroupReason::ReplicaWrongMaster])
        );
        // The master down: no master at all.
        let mut headless = healthy.clone();
        headless[0].status = Status::Down;
        headless[0].role = None;
        let v = judge_group(&headless, 1);
        assert_eq!(
            (v.status, v.reasons[0]),
            (Status::Down, GroupReason::NoMaster)
        );
        // Replicas whose link is down do not count as online.
        let mut unlinked = healthy;
        for r in &mut unlinked[1..] {
            r.link_up = Some(false);
        }
        assert_eq!(
            judge_group(&unlinked, 1).reasons,
            vec![GroupReason::ReplicasMissing]
        );
        assert_eq!(judge_group(&unlinked, 0).status, Status::Ok);
    }

    #[test]
    fn sentinel_groups_follow_the_master_the_sentinels_name() {
        let members = vec![
            member("a", 1, Role::Master, None),
            member("b", 2, Role::Replica, Some(1)),
        ];
        let at = |p: u16| Some(std::net::SocketAddr::from(([127, 0, 0, 1], p)));
        let facts = SentinelFacts {
            master: at(1),
            quorum: 2,
            reachable: 3,
            ..SentinelFacts::default()
        };
        let v = judge_sentinel_group(&members, 1, &facts);
        assert_eq!((v.status, v.master.as_deref()), (Status::Ok, Some("a")));
        // The sentinels name a server that is not a master (yet): no master.
        let moved = SentinelFacts {
            master: at(2),
            ..facts.clone()
        };
        assert_eq!(
            judge_sentinel_group(&members, 1, &moved).reasons[0],
            GroupReason::NoMaster
        );
        let odown = SentinelFacts {
            odown: true,
            ..facts.clone()
        };
        assert!(judge_sentinel_group(&members, 1, &odown)
            .reasons
            .contains(&GroupReason::SentinelOdown));
        let lost = SentinelFacts {
            reachable: 1,
            ..facts.clone()
        };
        let v = judge_sentinel_group(&members, 1, &lost);
        assert_eq!(
            (v.status, v.reasons[0]),
            (Status::Critical, GroupReason::SentinelQuorumLost)
        );
        let failing_over = SentinelFacts {
            failover_in_progress: true,
            ..facts
        };
        assert_eq!(
            judge_sentinel_group(&members, 1, &failing_over).reasons,
            vec![GroupReason::FailoverInProgress]
        );
    }

    #[test]
    fn nobody_answering_is_no_reachable_node() {
        let (shards, mut nodes) = healthy();
        for n in &mut nodes {
            n.status = Status::Down;
        }
        let v = judge_cluster(&shards, &nodes, 1);
        assert_eq!(v.status, Status::Down);
        assert_eq!(names(&v)[0], "no_reachable_node");
        assert!(!names(&v).contains(&"node_down"));
        let v = judge_cluster(&[], &[], 1);
        assert_eq!(names(&v), vec!["no_reachable_node"]);
    }
}
