fn main() {
    let _ = str0m::Rtc::builder();
}
