//! Temporary: dump selected functionals for clips as CSV.
fn main() {
    let a = mmer_audio::Analyzer::new();
    let names: Vec<String> = std::env::var("NAMES").unwrap().split(',').map(String::from).collect();
    println!("clip,{}", names.join(","));
    for p in std::env::args().skip(1) {
        let x = mmer_audio::load_16k_mono(&p).unwrap();
        let f = a.functionals(&x).unwrap();
        let stem = std::path::Path::new(&p).file_stem().unwrap().to_str().unwrap().to_string();
        let vals: Vec<String> = names.iter().map(|n| format!("{}", f.get(n).unwrap())).collect();
        println!("{},{}", stem, vals.join(","));
    }
}
