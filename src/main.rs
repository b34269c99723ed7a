fn main() {
    eprintln!("ocipatch: under construction");
    std::process::exit(2);
}
