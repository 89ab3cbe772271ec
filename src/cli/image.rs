//! `localbuild image build [--standard|--slim]` and `localbuild image ls`: localbuild's own
//! images (made from recipes embedded in `localbuild-docker`), their sizes, and the AWS image
//! names the CodeBuild-like one stands in for. Building shows a spinner with the current step
//! on a terminal, every step as a line when piped.

use super::error::CliError;
use super::exit;
use super::progress::{Mode, Progress};
use localbuild_docker::image::{self, Recipe};

pub fn build(standard: bool) -> Result<u8, CliError> {
    let recipe: &'static Recipe = match standard {
        true => &image::CODEBUILD_STANDARD,
        false => &image::SLIM,
    };
    super::with_docker(move |docker| async move {
        let mut shown = Progress::new(Mode::detect(false));
        let mut progress = |line: &str| shown.step(line);
        let started = std::time::Instant::now();
        let result = image::build_recipe_image(&docker, recipe, &mut progress).await;
        shown.finish();
        result?;
        super::out::print(format!(
            "built {} in {}s\n",
            recipe.image,
            started.elapsed().as_secs()
        ))?;
        Ok(exit::SUCCESS)
    })
}

pub fn ls() -> Result<u8, CliError> {
    super::with_docker(|docker| async move {
        let mut rows = vec![[
            "IMAGE".to_owned(),
            "SIZE".to_owned(),
            "STANDS IN FOR".to_owned(),
            "CONTENTS".to_owned(),
        ]];
        for recipe in image::RECIPES {
            let found = image::local_images(&docker, recipe.image).await?;
            let size = match found.first() {
                Some(i) => megabytes(i.size),
                None => "not built".to_owned(),
            };
            let default = (recipe.image == image::STANDARD_IMAGE).then_some(" (default)");
            let stands_in = match recipe.stands_in_for {
                "" => "-".to_owned(),
                names => names.to_owned(),
            };
            rows.push([
                format!("{}{}", recipe.image, default.unwrap_or_default()),
                size,
                stands_in,
                recipe.summary.to_owned(),
            ]);
        }
        let aws = image::local_images(&docker, "aws/codebuild/*").await?;
        for i in aws {
            rows.push([
                i.name,
                megabytes(i.size),
                "-".to_owned(),
                "present locally: used as is".to_owned(),
            ]);
        }
        let mut text = table(&rows);
        text.push_str(
            "\nBuild one with `localbuild image build --slim` or `localbuild image build --standard`; \
             a build asking for an AWS name above runs on its stand-in unless an image of that exact name is present.\n",
        );
        super::out::print(text)?;
        Ok(exit::SUCCESS)
    })
}

fn megabytes(bytes: u64) -> String {
    format!("{} MB", bytes.div_ceil(1_000_000))
}

fn table(rows: &[[String; 4]]) -> String {
    let widths: Vec<usize> = (0..3)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for r in rows {
        text.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {}\n",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    text
}
