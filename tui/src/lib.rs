//! brigade-tui: the terminal dashboard.
//!
//! It will show every stage live from [`Snapshot`](brigade_controller::Snapshot)s and
//! the decision log from [`DecisionRecord`](brigade_controller::DecisionRecord)s, and
//! send the operator's [`Override`](brigade_controller::Override)s back. It knows
//! snapshots and decisions, never threads.
