//! The terminal while `top` draws on it: raw mode (keys arrive one by one,
//! unechoed), the alternate screen, a hidden cursor and no line wrapping.
//! All of it is undone when the [`Screen`] is dropped, on an error return
//! as on a normal one, and by a panic hook on a panic.

use crossterm::cursor::{Hide, MoveTo, Show};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::Print;
use crossterm::terminal::{
    self, BeginSynchronizedUpdate, Clear, ClearType, DisableLineWrap, EnableLineWrap, EndSynchronizedUpdate,
    EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::{execute, queue};
use std::io::{self, BufWriter, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;
use tokio::sync::mpsc;

/// True while the terminal is in `top`'s state and must be restored.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Set by the panic hook: the terminal was restored because some thread panicked.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// Puts the terminal back as it was, once, whoever calls first.
fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = execute!(out, EndSynchronizedUpdate, EnableLineWrap, Show, LeaveAlternateScreen);
        let _ = terminal::disable_raw_mode();
    }
}

/// Restores the terminal before the default hook prints the panic, so the
/// message lands on the normal screen in a usable terminal.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            restore();
            previous(info);
        }));
    });
}

/// True once a panic (in any thread) restored the terminal: `top` then stops drawing.
pub fn panicked() -> bool {
    PANICKED.load(Ordering::SeqCst)
}

/// The terminal in `top`'s state; dropping it restores the terminal.
pub struct Screen {
    out: BufWriter<Stdout>,
}

impl Screen {
    /// Raw mode, alternate screen, hidden cursor, no wrapping.
    pub fn enter() -> io::Result<Screen> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let screen = Screen { out: BufWriter::with_capacity(64 * 1024, io::stdout()) };
        // On an error here `screen` is dropped, which restores what was changed.
        let mut out = io::stdout();
        execute!(out, EnterAlternateScreen, Hide, DisableLineWrap, Clear(ClearType::All))?;
        Ok(screen)
    }

    /// Columns and rows of the terminal (80×24 when it cannot say).
    pub fn size() -> (usize, usize) {
        terminal::size().map(|(w, h)| (usize::from(w), usize::from(h))).unwrap_or((80, 24))
    }

    /// Draws `lines` from the top left, clearing what the previous frame left.
    pub fn draw(&mut self, lines: &[String]) -> io::Result<()> {
        let out = &mut self.out;
        queue!(out, BeginSynchronizedUpdate)?;
        for (row, line) in lines.iter().enumerate() {
            let row = u16::try_from(row).unwrap_or(u16::MAX);
            queue!(out, MoveTo(0, row), Print(line), Clear(ClearType::UntilNewLine))?;
        }
        let below = u16::try_from(lines.len()).unwrap_or(u16::MAX);
        queue!(out, MoveTo(0, below), Clear(ClearType::FromCursorDown), EndSynchronizedUpdate)?;
        out.flush()
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.out.flush();
        restore();
    }
}

/// What a key press asks of `top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `q`, `Q`, Ctrl-C (raw mode turns Ctrl-C into a key, not a SIGINT).
    Quit,
    /// The terminal was resized: draw again now.
    Redraw,
}

/// The [`Key`] a terminal event means, if any.
pub fn key_of(event: &Event) -> Option<Key> {
    match event {
        Event::Key(KeyEvent { kind: KeyEventKind::Press, code, modifiers, .. }) => match code {
            KeyCode::Char('q' | 'Q') if !modifiers.contains(KeyModifiers::CONTROL) => Some(Key::Quit),
            KeyCode::Char('c' | 'C') if modifiers.contains(KeyModifiers::CONTROL) => Some(Key::Quit),
            _ => None,
        },
        Event::Resize(..) => Some(Key::Redraw),
        _ => None,
    }
}

/// Reads the terminal's keys on a thread of its own (crossterm's reads
/// block) and sends what they mean; stops when dropped.
pub struct Keys {
    rx: mpsc::UnboundedReceiver<Key>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Keys {
    /// Starts reading.
    pub fn spawn() -> io::Result<Keys> {
        let (tx, rx) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("eventcast-keys".into()).spawn(move || {
            // Polling with a timeout, so the thread notices `stop` within 100 ms.
            while !stopped.load(Ordering::SeqCst) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(false) => {}
                    Ok(true) => match event::read() {
                        Ok(e) => {
                            if let Some(key) = key_of(&e) {
                                if tx.send(key).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!("eventcast top: reading keys failed: {e}");
                            return;
                        }
                    },
                    Err(e) => {
                        tracing::warn!("eventcast top: reading keys failed: {e}");
                        return;
                    }
                }
            }
        })?;
        Ok(Keys { rx, stop, thread: Some(thread) })
    }

    /// The next key; pending forever once the reader ended.
    pub async fn next(&mut self) -> Key {
        match self.rx.recv().await {
            Some(k) => k,
            None => std::future::pending().await,
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(code, modifiers))
    }

    #[test]
    fn q_and_ctrl_c_quit_other_keys_do_not() {
        assert_eq!(key_of(&press(KeyCode::Char('q'), KeyModifiers::NONE)), Some(Key::Quit));
        assert_eq!(key_of(&press(KeyCode::Char('Q'), KeyModifiers::SHIFT)), Some(Key::Quit));
        assert_eq!(key_of(&press(KeyCode::Char('c'), KeyModifiers::CONTROL)), Some(Key::Quit));
        assert_eq!(key_of(&press(KeyCode::Char('c'), KeyModifiers::NONE)), None);
        assert_eq!(key_of(&press(KeyCode::Char('q'), KeyModifiers::CONTROL)), None);
        assert_eq!(key_of(&press(KeyCode::Enter, KeyModifiers::NONE)), None);
        assert_eq!(key_of(&Event::Resize(100, 30)), Some(Key::Redraw));
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(key_of(&Event::Key(release)), None);
    }
}
