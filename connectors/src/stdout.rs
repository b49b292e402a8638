//! The stdout sink: each worker prints its records as lines, for demos and
//! pipelines into other tools.

use serde::Serialize;
use std::io::Write;
use tidewater_operators::{Context, EventStream, Metrics};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Probe;

use crate::format::Format;

/// Prints each record of `stream` as a line in `format` on standard output.
pub fn write_stdout<D: Serialize + 'static>(
    stream: EventStream<'_, D>,
    ctx: &Context,
    format: Format,
) {
    let ctx2 = ctx.clone();
    stream
        .unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
            Pipeline,
            "StdoutSink",
            move |_cap, _info| {
                let mut buffer = Vec::new();
                move |(input, _frontier), _output| {
                    input.for_each(|_cap, data| {
                        buffer.clear();
                        let written = format
                            .encode_all(data.iter().map(|(d, _)| d), &mut buffer)
                            .and_then(|()| {
                                std::io::stdout()
                                    .lock()
                                    .write_all(&buffer)
                                    .map_err(|e| e.to_string())
                            });
                        if let Err(e) = written {
                            ctx2.fail(format!("cannot write to stdout: {e}"));
                        }
                        Metrics::add(&ctx2.metrics().records_out, data.len() as u64);
                    });
                }
            },
        )
        .probe_with(ctx.probe());
}
