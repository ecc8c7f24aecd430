//! `servescope export RUN --format csv|json`.

use std::io::Write;

use anyhow::Context;
use servescope_coordinator::report::export::{export, Format};

use super::common::DbFlag;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Fmt {
    Csv,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run id (see `servescope runs`)
    pub run: i64,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: Fmt,
    /// Write here instead of standard output
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub db: DbFlag,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let st = a.db.open_existing()?;
    let f = match a.format {
        Fmt::Csv => Format::Csv,
        Fmt::Json => Format::Json,
    };
    let mut w: Box<dyn Write> = match &a.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let rows = export(&st, a.run, f, &mut w)?;
    w.flush()?;
    eprintln!("exported {rows} rows of run {}", a.run);
    Ok(())
}
