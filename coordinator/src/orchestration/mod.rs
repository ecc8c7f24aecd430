//! What drives processes and I/O: agent connections, clock offsets and telemetry
//! sessions, recording, engine scraping, the OTLP receiver, Ray Serve, fabric
//! probes, load runs, `pd run`, `startup run` and `exp run`. May use every other
//! layer.

pub mod clock;
pub mod connect;
pub mod exp;
pub mod fabric;
pub mod load;
pub mod otlp_receiver;
pub mod pd_run;
pub mod ray;
pub mod record;
pub mod scrape;
pub mod session;
pub mod startup_run;
