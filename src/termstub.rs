//! Temporary stand-in for the terminal model while it is being written.
#![allow(missing_docs, dead_code)]
pub struct Terminal {
    rows: u16,
    cols: u16,
}
impl Terminal {
    pub fn new(rows: u16, cols: u16, _scrollback: usize) -> Terminal {
        Terminal { rows, cols }
    }
    pub fn feed(&mut self, _bytes: &[u8]) {}
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.rows = rows;
        self.cols = cols;
    }
    pub fn size(&self) -> (u16, u16) {
        (self.rows, self.cols)
    }
    pub fn render(&self) -> Vec<u8> {
        Vec::new()
    }
    pub fn text_lines(&self) -> Vec<String> {
        Vec::new()
    }
    pub fn alternate_screen_active(&self) -> bool {
        false
    }
}
