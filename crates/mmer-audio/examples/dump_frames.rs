//! Temporary: dump frame features as CSV.
fn main() {
    let a = mmer_audio::Analyzer::new();
    for p in std::env::args().skip(1) {
        let x = mmer_audio::load_16k_mono(&p).unwrap();
        let ff = a.frames(&x).unwrap();
        let out = format!("/tmp/ours_{}.csv", std::path::Path::new(&p).file_stem().unwrap().to_str().unwrap());
        let mut s = String::from("t,f0,voiced,periodicity,hnr,loudness,energy,flux\n");
        for t in 0..ff.num_frames {
            s += &format!("{},{},{},{},{},{},{},{}\n", t, ff.f0_hz[t], ff.voiced[t] as u8, ff.periodicity[t], ff.hnr_db[t], ff.loudness[t], ff.energy_db[t], ff.spectral_flux[t]);
        }
        std::fs::write(out, s).unwrap();
    }
}
