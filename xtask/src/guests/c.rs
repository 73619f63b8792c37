//! c jobs (being written this session).

pub(super) fn build() -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
