//! The stdout sink: each worker prints its records as lines, for demos and
//! pipelines into other tools. When the reader goes away (`| head`), the
//! process ends quietly, as command-line tools do.

use serde::Serialize;
use std::io::Write;
use tidewater_operators::{Context, EventStream, Metrics};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use crate::format::Format;

/// Prints each record of `stream` as a line in `format` on standard output.
pub fn write_stdout<D: Serialize + 'static>(
    stream: EventStream<'_, D>,
    ctx: &Context,
    format: Format,
) {
    let ctx2 = ctx.clone();
    let done = stream.unary_frontier::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
        Pipeline,
        "StdoutSink",
        move |_cap, _info| {
            let mut buffer = Vec::new();
            move |(input, _frontier), _output| {
                input.for_each(|_cap, data| {
                    buffer.clear();
                    if let Err(e) = format.encode_all(data.iter().map(|(d, _)| d), &mut buffer) {
                        ctx2.fail(format!("cannot encode a record for stdout: {e}"));
                    }
                    match std::io::stdout().lock().write_all(&buffer) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            std::process::exit(0)
                        }
                        Err(e) => ctx2.fail(format!("cannot write to stdout: {e}")),
                    }
                    Metrics::add(&ctx2.metrics().records_out, data.len() as u64);
                });
            }
        },
    );
    ctx.attach(done);
}
