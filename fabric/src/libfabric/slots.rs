//! The layout every libfabric operation of a probe shares: the control area and its
//! message size, the tags, one `fi_context2` slot per operation in flight, and the
//! completion counters the progress loop advances.

/// Bytes of the control area: one receive slot and one send slot.
pub(super) const CTRL_SLOT: usize = 64;
/// Bytes of a control message.
pub(super) const CTRL_LEN: usize = 32;
/// Tags: control and data never match each other's receives.
pub(super) const CTRL_TAG: u64 = 0x5c;
pub(super) const DATA_TAG: u64 = 0xda;

/// Completions seen so far.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub ctrl_rx: Option<[u8; CTRL_LEN]>,
    pub ctrl_tx: u64,
    pub rx_posted: u64,
    pub rx_done: u64,
    pub rx_zero: u64,
    pub tx_posted: u64,
    pub tx_done: u64,
}

/// Contexts: [ctrl rx, ctrl tx, data rx × (window+1), data tx × (window+1)].
pub(super) fn slots(window: usize) -> usize {
    2 + 2 * (window + 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    CtrlRx,
    CtrlTx,
    DataRx,
    DataTx,
}
