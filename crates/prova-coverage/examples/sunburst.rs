//! Writes the sunburst of a coverage report (prova's or an APISnoop
//! release file) as SVG: `cargo run -p prova-coverage --example sunburst --
//! REPORT.json [FOCUS] > out.svg`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: sunburst REPORT.json [FOCUS]")?;
    let report = prova_coverage::Report::from_json(&std::fs::read(&path)?, &path)?;
    let opts = prova_coverage::sunburst::SunburstOptions {
        focus: args.next(),
        ..Default::default()
    };
    print!(
        "{}",
        prova_coverage::sunburst::sunburst_svg(&report, &opts)?
    );
    Ok(())
}
