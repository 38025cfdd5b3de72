//! What a run counts: each shard its own, the world its own, summed at the end.

/// What a run counts.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Counts {
    /// ut_pex frames the honest nodes' `Swarm`s sent.
    pub frames: u64,
    /// Their bytes on the wire.
    pub bytes: u64,
    /// The largest of them.
    pub max_frame_bytes: u64,
    /// Dials sent.
    pub dials: u64,
    /// Dials to the victim's IP.
    pub victim_dials: u64,
    /// Dials that failed (refused, timed out).
    pub dial_failures: u64,
    /// Connections opened.
    pub connections: u64,
    /// Connections closed (by churn).
    pub disconnections: u64,
    /// Forged messages the attackers sent (one per connection per announcement).
    pub attacker_messages: u64,
    /// Messages a receiving `Swarm` refused.
    pub message_errors: u64,
    /// Nodes that joined after the start.
    pub joins: u64,
}

impl Counts {
    /// Adds `other`'s counts (the largest frame is the larger one).
    pub(crate) fn add(&mut self, other: &Counts) {
        self.frames += other.frames;
        self.bytes += other.bytes;
        self.max_frame_bytes = self.max_frame_bytes.max(other.max_frame_bytes);
        self.dials += other.dials;
        self.victim_dials += other.victim_dials;
        self.dial_failures += other.dial_failures;
        self.connections += other.connections;
        self.disconnections += other.disconnections;
        self.attacker_messages += other.attacker_messages;
        self.message_errors += other.message_errors;
        self.joins += other.joins;
    }
}
