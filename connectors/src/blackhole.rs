//! The blackhole sink: counts its records and drops them, for benchmarks
//! that time a pipeline without its output (Flink's `blackhole` connector;
//! `--output blackhole:`).

use tidewater_operators::{Context, EventStream, Metrics};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

/// The output name of the blackhole sink.
pub const BLACKHOLE: &str = "blackhole:";

/// Counts the records of `stream` (as `records_out`) and drops them; the
/// job ends when the stream does.
pub fn write_blackhole<D: 'static>(stream: EventStream<'_, D>, ctx: &Context) {
    let ctx2 = ctx.clone();
    let done = stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "BlackholeSink",
        move |_cap, _info| {
            move |(input, _frontier), _output| {
                input.for_each(|_cap, data| {
                    Metrics::add(&ctx2.metrics().records_out, data.len() as u64);
                    data.clear();
                });
            }
        },
    );
    ctx.attach(done);
}
