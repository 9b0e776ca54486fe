//! `DESIGN.md` quotes the tunables as `` `tuning.NAME = VALUE` ``: each quote must be
//! the default in the code, each name a field, and every field quoted with its value.

use std::collections::BTreeSet;

use super::Tuning;

const DESIGN: &str = include_str!("DESIGN.md");

/// What is wrong with the quotes of `tuning`'s fields in `text`, one line per problem,
/// each naming the line of `text` it is on.
fn misquotes(text: &str, tuning: &Tuning) -> Vec<String> {
    let fields = serde_json::to_value(tuning).expect("a Tuning serializes");
    let fields = fields.as_object().expect("a Tuning is an object");
    let mut problems = Vec::new();
    let mut valued = BTreeSet::new();
    for (index, line) in text.lines().enumerate() {
        let at = format!("DESIGN.md:{}", index + 1);
        for (start, _) in line.match_indices("`tuning.") {
            let rest = &line[start + "`tuning.".len()..];
            let Some(end) = rest.find('`') else {
                problems.push(format!("{at}: `tuning.{rest} is not closed on its line"));
                continue;
            };
            let (name, value) = match rest[..end].split_once(" = ") {
                Some((name, value)) => (name, Some(value)),
                None => (&rest[..end], None),
            };
            let Some(default) = fields.get(name).and_then(|value| value.as_f64()) else {
                problems.push(format!("{at}: `tuning.{name}` is no field of Tuning"));
                continue;
            };
            let Some(value) = value else { continue };
            valued.insert(name.to_owned());
            match value.parse::<f64>() {
                Ok(quoted) if quoted == default => {}
                Ok(_) => problems.push(format!(
                    "{at}: quotes `tuning.{name} = {value}`, and the default is {default}"
                )),
                Err(_) => problems.push(format!(
                    "{at}: `tuning.{name} = {value}`: {value} is not a number"
                )),
            }
        }
    }
    for name in fields.keys().filter(|name| !valued.contains(*name)) {
        problems.push(format!("DESIGN.md never quotes `tuning.{name} = …`"));
    }
    problems
}

#[test]
fn the_design_quotes_every_tunable_at_its_default() {
    let problems = misquotes(DESIGN, &Tuning::default());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_changed_default_or_a_stale_name_in_the_design_is_caught() {
    let tuning = Tuning {
        knee: 0.2,
        ..Tuning::default()
    };
    let problems = misquotes(DESIGN, &tuning);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("quotes `tuning.knee = 0.15`, and the default is 0.2"),
        "{problems:?}"
    );

    let stale = format!("{DESIGN}\nStages grow ×`tuning.growth = 4`.\n");
    let problems = misquotes(&stale, &Tuning::default());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("`tuning.growth` is no field"),
        "{problems:?}"
    );

    let without_knee = DESIGN.replace("`tuning.knee = 0.15`", "15%");
    let problems = misquotes(&without_knee, &Tuning::default());
    assert_eq!(
        problems,
        vec!["DESIGN.md never quotes `tuning.knee = …`".to_owned()]
    );
}
