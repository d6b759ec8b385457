//! The page's panels: thin views over the model types, wired to the shared contexts.

pub mod anomalies_panel;
pub mod charts_panel;
pub mod compare;
pub mod controls;
pub mod delivery;
pub mod event_log;
pub mod faults;
pub mod live_controls;
pub mod map;
pub mod message_canvas;
pub mod metrics;
pub mod player_bar;
pub mod sequence_diagram;
pub mod share;
pub mod tables;

use leptos::prelude::*;
use std::sync::{Arc, Mutex};

/// One row of a [`keyed`] list: its key, and how to draw it when the key first shows up.
pub struct Row {
    key: String,
    view: Box<dyn FnOnce() -> AnyView + Send>,
}

/// A keyed list, as `<For each key let:item>` draws it — a row drawn once per key, kept while
/// its key stays, its owner disposed of when the key goes — but with one item type (`Row`) and
/// one key type (`String`) for every list of the page, so Leptos' keyed-list code (the effect,
/// the diff, the key sets) is compiled once, not once per list (about 5 KB of WebAssembly each).
/// `key` must give different items different strings, as a `For` key must (see [`key_of`]).
pub fn keyed<T, I>(
    each: impl Fn() -> I + Send + 'static,
    key: impl Fn(&T) -> String + Send + 'static,
    row: impl Fn(T) -> AnyView + Send + Clone + 'static,
) -> AnyView
where
    T: Send + 'static,
    I: IntoIterator<Item = T>,
{
    rows(Box::new(move || {
        each()
            .into_iter()
            .map(|item| {
                let row = row.clone();
                Row {
                    key: key(&item),
                    view: Box::new(move || row(item)),
                }
            })
            .collect()
    }))
}

/// The one `For` of the page's keyed lists.
#[inline(never)]
fn rows(each: Box<dyn Fn() -> Vec<Row> + Send>) -> AnyView {
    view! {
        <For each=each key=|row: &Row| row.key.clone() let:row>
            {(row.view)()}
        </For>
    }
    .into_inner()
    .into_any()
}

/// `<Show when>children</Show>`, but with one type for every condition and every child view,
/// so Leptos' `Show` (its memo of the condition, the effect that swaps the view in and out) is
/// compiled once, not once per place it is used.
pub fn show(
    when: impl Fn() -> bool + Send + Sync + 'static,
    children: impl Fn() -> AnyView + Send + Sync + 'static,
) -> AnyView {
    shown(Box::new(when), Box::new(children))
}

/// The one `Show` of the page.
#[inline(never)]
fn shown(
    when: Box<dyn Fn() -> bool + Send + Sync>,
    children: Box<dyn Fn() -> AnyView + Send + Sync>,
) -> AnyView {
    // What `Show` does — a memo of the condition, the view rebuilt when it changes — with the
    // page's own memo and reactive view types, not `Show`'s.
    let when = Computed::compared(move |_| when());
    reactive(move || when.get().then(&children).into_any()).into_any()
}

/// A reactive value (text, a number, a view) behind the closure type Leptos' `view!` gives every
/// `{move || …}` block, so a closure made elsewhere (by a helper, or named first) shares those
/// blocks' rendering code for its output type instead of compiling its own.
pub fn reactive<T: 'static>(
    value: impl FnMut() -> T + Send + 'static,
) -> Arc<Mutex<dyn FnMut() -> T + Send>> {
    Arc::new(Mutex::new(value))
}

/// The page's element that `selector` picks (its id, or the class of the page's only one), as an
/// `E`, or none while it is not in the page: what a `NodeRef` gives, without a `NodeRef` type and
/// its code for each kind of element.
pub fn element<E: wasm_bindgen::JsCast>(selector: &str) -> Option<E> {
    found(selector).map(wasm_bindgen::JsCast::unchecked_into)
}

/// The element `selector` picks in the page's document.
#[inline(never)]
fn found(selector: &str) -> Option<web_sys::Element> {
    document().query_selector(selector).ok().flatten()
}

/// An element's attribute set by name (`<th {attr("scope", "col")}>`): Leptos compiles a named
/// attribute's code (building, updating, type erasure) once per name *and* value type, a
/// named-by-string one once per value type, so every attribute of the page goes through here.
/// Sets the same attribute with the same value as `scope="col"` would.
pub fn attr<V>(
    name: &'static str,
    value: V,
) -> leptos::tachys::html::attribute::custom::CustomAttr<&'static str, V::Output>
where
    V: IntoAttributeValue,
    V::Output: leptos::attr::AttributeValue,
{
    leptos::tachys::html::attribute::custom::custom_attribute(name, value.into_attribute_value())
}

/// An event handler as an element's attribute (`<button {listen::<MouseEvent>("click", …)}>`,
/// what `on:click=…` does): the handler is boxed and the event named by a string, so every
/// handler of the page is one attribute type and Leptos' event-listener code (attaching, the
/// handler's wrapper, the type-erased attribute) is compiled once, not once per event type or
/// handler. The listener is added to the element itself, as `on:` adds it (the page's Leptos has
/// no event delegation); `E` is the event's type, which the handler gets as `on:` would give it.
pub fn listen<E: wasm_bindgen::JsCast + 'static>(
    event: &'static str,
    mut handler: impl FnMut(E) + 'static,
) -> leptos::tachys::html::event::On<leptos::ev::Custom, Listener> {
    listener(
        event,
        Box::new(move |event: leptos::ev::Event| {
            handler(wasm_bindgen::JsCast::unchecked_into(event))
        }),
    )
}

/// A boxed event handler ([`listen`]).
pub type Listener = Box<dyn FnMut(leptos::ev::Event)>;

/// The one event-listener attribute type of the page.
#[inline(never)]
fn listener(
    event: &'static str,
    handler: Listener,
) -> leptos::tachys::html::event::On<leptos::ev::Custom, Listener> {
    leptos::tachys::html::event::on(leptos::ev::Custom::new(event), handler)
}

/// How near the screen an element counts as on it for [`on_screen`]: only on it. Chromium
/// rasterizes what lies near the screen too, so a view following the playhead just off it still
/// costs its drawing: scrolled down to the event log, the sequence diagram 23 px above the
/// screen cost 17 ms a frame of raster (its dashed arrows) with a margin of 200 px. A view
/// scrolled into view may show its last picture for a frame before it catches up.
const ON_SCREEN_MARGIN: &str = "0px";

/// Whether the page's element that `selector` picks ([`element`]) is on screen
/// ([`ON_SCREEN_MARGIN`]), as the browser's `IntersectionObserver` reports it; true until the
/// first report, and for good where the browser has no observer. The views below the map follow
/// the playhead only while they can be seen (`Clock::while_shown`) and catch up when they come
/// back.
pub fn on_screen(selector: &'static str) -> Var<bool> {
    let seen = Var::new(true);
    // Effects run once the view is in the page. An element not found leaves the view following
    // the playhead always: slower, never wrong.
    effect(move |_: Option<()>| {
        if let Some(element) = found(selector) {
            observe(element, seen);
        }
    });
    seen
}

/// Keeps `seen` up to date with whether `element` is on screen, until the current owner goes.
#[inline(never)]
fn observe(element: web_sys::Element, seen: Var<bool>) {
    use wasm_bindgen::JsCast;
    let on_change = wasm_bindgen::closure::Closure::<dyn FnMut(js_sys::Array)>::new(
        move |entries: js_sys::Array| {
            // Entries come oldest first: the last one is the element's state now.
            let last = entries.get(entries.length().wrapping_sub(1));
            if let Some(entry) = last.dyn_ref::<web_sys::IntersectionObserverEntry>() {
                seen.set(entry.is_intersecting());
            }
        },
    );
    let options = web_sys::IntersectionObserverInit::new();
    options.set_root_margin(ON_SCREEN_MARGIN);
    let Ok(observer) = web_sys::IntersectionObserver::new_with_options(
        on_change.as_ref().unchecked_ref(),
        &options,
    ) else {
        return;
    };
    observer.observe(&element);
    let kept = send_wrapper::SendWrapper::new((observer, on_change));
    on_cleanup(move || kept.take().0.disconnect());
}

/// What every [`Computed`] holds: its value, boxed, so that all of them are one memo type.
type Boxed = Box<dyn std::any::Any + Send + Sync>;

/// How a [`Computed`] computes its boxed value from the one before.
type BoxedFn = Box<dyn Fn(Option<&Boxed>) -> Boxed + Send + Sync>;

/// A memo of a `T`, held as one memo type for every `T`: Leptos compiles a memo's machinery
/// (recomputing, reading, dropping) once per value type, about a kilobyte each, and the page
/// has dozens of value types. It recomputes only when what it reads changes, its readers share
/// one computation, and `new` / `compared` say whether they run again every time it recomputes.
pub struct Computed<T> {
    memo: Memo<Boxed>,
    value: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for Computed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Computed<T> {}

impl<T: Send + Sync + 'static> Computed<T> {
    /// A memo that does not compare: whenever it recomputes, its readers run again, as they
    /// would for a new value. For a value that is new nearly every time it recomputes (it
    /// follows the playhead or the events applied), or whose readers compare what they take
    /// from it (a row's own memo, a keyed list); comparing would compile the value type's
    /// equality into the page.
    pub fn new(value: impl Fn(Option<&T>) -> T + Send + Sync + 'static) -> Computed<T> {
        Computed::with_compare(value, |_, _| true)
    }

    /// A memo whose readers run again only when its value changes (`Memo::new`).
    pub fn compared(value: impl Fn(Option<&T>) -> T + Send + Sync + 'static) -> Computed<T>
    where
        T: PartialEq,
    {
        Computed::with_compare(value, |before, after| {
            before.and_then(|b| b.downcast_ref::<T>()) != after.and_then(|a| a.downcast_ref::<T>())
        })
    }

    fn with_compare(
        value: impl Fn(Option<&T>) -> T + Send + Sync + 'static,
        changed: fn(Option<&Boxed>, Option<&Boxed>) -> bool,
    ) -> Computed<T> {
        Computed {
            memo: boxed_memo(
                Box::new(move |before: Option<&Boxed>| -> Boxed {
                    Box::new(value(before.and_then(|b| b.downcast_ref::<T>())))
                }),
                changed,
            ),
            value: std::marker::PhantomData,
        }
    }

    /// Reads the value; reruns the caller when it changes.
    pub fn with<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        self.memo.with(|value| read(unboxed(value)))
    }

    /// Reads the value without tracking it.
    pub fn with_untracked<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        self.memo.with_untracked(|value| read(unboxed(value)))
    }

    /// A copy of the value; reruns the caller when it changes.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }

    /// A copy of the value, untracked.
    pub fn get_untracked(&self) -> T
    where
        T: Clone,
    {
        self.with_untracked(T::clone)
    }

    /// Reruns the caller when the value changes.
    pub fn track(&self) {
        self.memo.track();
    }
}

/// A signal of a `T`, held as one signal type for every `T`, as [`Computed`] is for memos: Leptos
/// compiles a signal's reading, writing and dropping once per value type. Reading and writing
/// notify as an `RwSignal`'s do (`set` and `update` always notify).
pub struct Var<T> {
    signal: RwSignal<Boxed>,
    value: std::marker::PhantomData<fn() -> T>,
}

impl<T> Clone for Var<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Var<T> {}

impl<T: Send + Sync + 'static> Var<T> {
    /// A signal holding `value`.
    pub fn new(value: T) -> Var<T> {
        Var {
            signal: boxed_signal(Box::new(value)),
            value: std::marker::PhantomData,
        }
    }

    /// Reads the value; reruns the caller when it changes.
    pub fn with<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        self.signal.with(|value| read(unboxed(value)))
    }

    /// Reads the value without tracking it.
    pub fn with_untracked<R>(&self, read: impl FnOnce(&T) -> R) -> R {
        self.signal.with_untracked(|value| read(unboxed(value)))
    }

    /// A copy of the value; reruns the caller when it changes.
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }

    /// A copy of the value, untracked.
    pub fn get_untracked(&self) -> T
    where
        T: Clone,
    {
        self.with_untracked(T::clone)
    }

    /// Reruns the caller when the value changes.
    pub fn track(&self) {
        self.signal.track();
    }

    /// Changes the value in place and notifies its readers.
    pub fn update(&self, change: impl FnOnce(&mut T)) {
        self.signal
            .update(|value| change(value.downcast_mut().expect("a Var<T> holds a T")));
    }

    /// Replaces the value and notifies its readers.
    pub fn set(&self, value: T) {
        set_boxed(self.signal, Box::new(value));
    }
}

/// Replaces a [`Var`]'s box (one function for every `T`).
#[inline(never)]
fn set_boxed(signal: RwSignal<Boxed>, value: Boxed) {
    signal.set(value);
}

/// The one signal type of every [`Var`].
#[inline(never)]
fn boxed_signal(value: Boxed) -> RwSignal<Boxed> {
    RwSignal::new(value)
}

/// What an [`effect`] hands itself from one run to the next, boxed.
type BoxedLocal = Box<dyn std::any::Any>;

/// `Effect::new(run)`, with `run` boxed and its value boxed, so that Leptos' effect (its task
/// that waits for changes and reruns) is compiled once for the page, not once per effect.
pub fn effect<T: 'static>(mut run: impl FnMut(Option<T>) -> T + 'static) {
    boxed_effect(Box::new(move |before: Option<BoxedLocal>| -> BoxedLocal {
        Box::new(run(before.and_then(|b| b.downcast::<T>().ok()).map(|b| *b)))
    }));
}

/// The one effect of the page.
#[inline(never)]
fn boxed_effect(run: Box<dyn FnMut(Option<BoxedLocal>) -> BoxedLocal>) {
    Effect::new(run);
}

/// The one memo of every [`Computed`]: its function boxed too, so that Leptos' memo (its
/// recomputing closure, its creation) is compiled once.
#[inline(never)]
fn boxed_memo(value: BoxedFn, changed: fn(Option<&Boxed>, Option<&Boxed>) -> bool) -> Memo<Boxed> {
    Memo::new_with_compare(value, changed)
}

/// The `T` in a [`Computed`]'s box, which always holds one.
fn unboxed<T: 'static>(value: &Boxed) -> &T {
    value.downcast_ref().expect("a Computed<T> holds a T")
}

/// A list key made of `parts`, each after its length, so that different parts never make the
/// same key (`["a:", "b"]` and `["a", ":b"]` differ).
pub fn key_of(parts: &[&str]) -> String {
    let mut key = String::new();
    for part in parts {
        key.push_str(&part.len().to_string());
        key.push(':');
        key.push_str(part);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn keys_of_different_parts_differ() {
        assert_ne!(key_of(&["a:", "b"]), key_of(&["a", ":b"]));
        assert_ne!(key_of(&["ab", ""]), key_of(&["a", "b"]));
        assert_ne!(key_of(&["", "x"]), key_of(&["x", ""]));
        assert_eq!(key_of(&["read", "7"]), key_of(&["read", "7"]));
        assert_eq!(key_of(&["10:x"]), "4:10:x");
    }
}
