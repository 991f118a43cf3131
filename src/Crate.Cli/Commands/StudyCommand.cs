using System.CommandLine;
using Crate.Cli.Reporting;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training.Adaptation;
using Crate.Training.Study;

namespace Crate.Cli.Commands;

/// <summary><c>crate study</c>: pretrain with each pretext task, adapt with each method, and tabulate downstream accuracy.</summary>
internal static class StudyCommand
{
    /// <summary>Subfolder of --out keeping the study's progress.</summary>
    private const string ProgressFolder = "progress";

    public static Command Create()
    {
        var data = new DataOptions();
        var preset = new Option<string>("--preset") { Description = "Backbone preset.", DefaultValueFactory = _ => "mini" };
        var depth = NumberOption.Integer("--depth", "Override the preset's depth (smaller studies).");
        var pretrainSteps = NumberOption.Integer("--pretrain-steps", "Pretraining steps per pretext task (default 600).");
        var adaptSteps = NumberOption.Integer("--adapt-steps", "Adaptation steps per method (default 300).");
        var batch = NumberOption.Integer("--batch-size", "Images per step (default 128).");
        var testLimit = NumberOption.Integer("--test-limit", "Evaluate on at most this many test images.");
        var seed = new Option<int>("--seed") { Description = "Seed of everything random.", DefaultValueFactory = _ => 1 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for study.md, study.html, study.png and study.json.", DefaultValueFactory = _ => new DirectoryInfo("runs/study") };
        var resume = new Option<bool>("--resume") { Description = $"Continue the study in --out where it stopped (same options): finished cells are kept, the run in progress continues from its checkpoint in <out>/{ProgressFolder}." };
        var every = NumberOption.Integer("--checkpoint-every", "Steps between checkpoints of the pretraining or adaptation in progress (default 50).");
        var command = new Command("study",
            "Pretext task {supervised, MAE, rotation, contrastive} x adaptation {linear probe, prompt tuning, fine-tuning} under fixed budgets; writes a table, chart and JSON.")
            { preset, depth, pretrainSteps, adaptSteps, batch, testLimit, seed, output, resume, every };
        data.AddTo(command);
        command.SetAction(parse =>
        {
            int everySteps = parse.GetValue(every) ?? 50;
            if (everySteps < 1) throw new ArgumentException("--checkpoint-every must be at least 1.");
            Core.IO.AtomicFile.DeleteAbandoned(parse.GetValue(output)!.FullName);
            var backbone = CratePresets.ByName(parse.GetValue(preset)!);
            if (parse.GetValue(depth) is int d) backbone = backbone with { Depth = d };
            var read = DataOptions.For(backbone) with { ClassNames = null };
            var train = data.Load(parse, DataSource.FashionMnist, DataSplit.Train, read, parse.GetValue(seed));
            var test = data.Load(parse, DataSource.FashionMnist, DataSplit.Test, read with { Limit = parse.GetValue(testLimit) }, parse.GetValue(seed));
            int batchSize = parse.GetValue(batch) ?? 128;
            var (mean, std) = train.ChannelStatistics();
            var options = new StudyOptions
            {
                Backbone = backbone with { Mean = mean, Std = std },
                Pretraining = new Budget(parse.GetValue(pretrainSteps) ?? 600, batchSize, 1e-3),
                Adaptation = new Budget(parse.GetValue(adaptSteps) ?? 300, batchSize, 1e-3),
                Seed = parse.GetValue(seed),
                CheckpointDirectory = Path.Combine(parse.GetValue(output)!.FullName, ProgressFolder),
                CheckpointEverySteps = everySteps,
                Resume = parse.GetValue(resume),
            };
            Console.WriteLine($"study: {train.Count} training and {test.Count} test images of '{data.Spec(parse, DataSource.FashionMnist)}', backbone {options.Backbone}");
            var cells = PretextStudy.Run(options, train, test, line => Console.WriteLine(line));
            var dir = parse.GetValue(output)!.FullName;
            StudyReport.Write(dir, cells, options, "crate " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)), data.Spec(parse, DataSource.FashionMnist));
            Console.WriteLine(File.ReadAllText(Path.Combine(dir, "study.md")));
            Console.WriteLine($"wrote {dir}/study.md, study.html, study.png, study.json");
            return 0;
        });
        return command;
    }
}
