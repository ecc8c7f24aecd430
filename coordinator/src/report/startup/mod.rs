//! The `startup compare` page (its stacked-bar chart and tables) and the per-GPU
//! cold-start table.

pub mod chart;
pub mod gpus;
pub mod page;
