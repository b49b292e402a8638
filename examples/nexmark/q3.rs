//! q3, local item suggestion: sellers in Oregon, Idaho or California (the
//! generator writes states in lower case; matched in any case) with their
//! auctions in category 10. A regular (unbounded) join as a keyed process
//! function per person: a person and their auctions meet whichever comes
//! first. Rows: `name,city,state,auction`.

use tidewater::prelude::*;

/// A person `(id, name, city, state)` or an auction `(id, seller, category)`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Item {
    Person(u64, String, String, String),
    Auction(u64, u64, u64),
}

impl Item {
    fn person(&self) -> u64 {
        match self {
            Item::Person(id, ..) => *id,
            Item::Auction(_, seller, _) => *seller,
        }
    }
}

/// The person (if local) and auctions that came before them.
#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Seller {
    person: Option<(String, String, String)>,
    waiting: Vec<u64>,
}

struct Join;

impl ProcessFunction<u64, Item> for Join {
    type State = Seller;
    type Out = (String, String, String, u64);
    type Side = ();

    fn process(
        &mut self,
        item: Item,
        seller: &mut Seller,
        ctx: &mut ProcessContext<'_, u64, Self::Out, ()>,
    ) {
        match item {
            Item::Person(_, name, city, state) => {
                if ["or", "id", "ca"].contains(&state.to_lowercase().as_str()) {
                    for auction in std::mem::take(&mut seller.waiting) {
                        ctx.emit((name.clone(), city.clone(), state.clone(), auction));
                    }
                    seller.person = Some((name, city, state));
                } else {
                    seller.waiting.clear();
                }
            }
            Item::Auction(id, _, 10) => match &seller.person {
                Some((name, city, state)) => {
                    ctx.emit((name.clone(), city.clone(), state.clone(), id))
                }
                None => seller.waiting.push(id),
            },
            Item::Auction(..) => {}
        }
    }
}

pub fn q3(items: EventStream<'_, Item>) -> EventStream<'_, (String, String, String, u64)> {
    items.key_by(Item::person).process(None, Join).output
}
