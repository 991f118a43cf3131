using System.CommandLine;
using Crate.Cli.Reporting;
using Crate.Core.Data;
using Crate.Core.Data.Segmentation;
using Crate.Core.Model;
using Crate.Training.Segmentation;
using Crate.Training.Study;

namespace Crate.Cli.Commands;

/// <summary>
/// <c>crate study</c>: pretrain with each pretext task (and keep an untrained control), adapt with each method, and
/// tabulate the downstream figures: classification top-1, and segmentation mIoU on generated scenes.
/// </summary>
internal static class StudyCommand
{
    /// <summary>Subfolder of --out keeping the study's progress.</summary>
    private const string ProgressFolder = "progress";

    private const string Both = "both";

    public static Command Create()
    {
        var data = new DataOptions();
        var task = new Option<string>("--task") { Description = "Which half to run: classification, segmentation (generated scenes) or both.", DefaultValueFactory = _ => Both };
        task.AcceptOnlyFromAmong([.. Enum.GetValues<StudyTask>().Select(TaskName), Both]);
        var preset = new Option<string>("--preset") { Description = "Backbone preset.", DefaultValueFactory = _ => "mini" };
        var depth = NumberOption.Integer("--depth", "Override the preset's depth (smaller studies).");
        var pretrainSteps = NumberOption.Integer("--pretrain-steps", "Pretraining steps per pretext task (default 600).");
        var adaptSteps = NumberOption.Integer("--adapt-steps", "Adaptation steps per method (default 300).");
        var batch = NumberOption.Integer("--batch-size", "Images per step (default 128).");
        var promptTokens = NumberOption.Integer("--prompt-tokens", "Prompt tokens for prompt tuning (default 8).");
        var testLimit = NumberOption.Integer("--test-limit", "Classification: evaluate on at most this many test images.");
        var scenes = NumberOption.Integer("--scenes", "Segmentation: training scenes to generate (default 10000).");
        var testScenes = NumberOption.Integer("--test-scenes", "Segmentation: test scenes to generate (default 1000).");
        var sceneSize = NumberOption.Integer("--scene-size", "Segmentation: side of the generated scenes (default 64).");
        var segmentationPatch = NumberOption.Integer("--segmentation-patch-size", "Segmentation: patch side of the segmentation backbone (default 8).");
        var seed = new Option<int>("--seed") { Description = "Seed of everything random, the generated scenes included.", DefaultValueFactory = _ => 1 };
        var output = new Option<DirectoryInfo>("--out") { Description = "Folder for study.md, study.html, study.png and study.json.", DefaultValueFactory = _ => new DirectoryInfo("runs/study") };
        var resume = new Option<bool>("--resume") { Description = $"Continue the study in --out where it stopped (same options): finished cells are kept, the run in progress continues from its checkpoint in <out>/{ProgressFolder}." };
        var every = NumberOption.Integer("--checkpoint-every", "Steps between checkpoints of the pretraining or adaptation in progress (default 50).");
        var command = new Command("study",
            "Pretext task {supervised, MAE, rotation, contrastive, untrained control} x adaptation {linear probe, prompt tuning, fine-tuning} under fixed budgets, "
            + "for classification and for segmentation of generated scenes; writes tables, a chart and JSON.")
            { task, preset, depth, pretrainSteps, adaptSteps, batch, promptTokens, testLimit, scenes, testScenes, sceneSize, segmentationPatch, seed, output, resume, every };
        data.AddTo(command);
        command.SetAction(parse =>
        {
            int everySteps = parse.GetValue(every) ?? 50;
            if (everySteps < 1) throw new ArgumentException("--checkpoint-every must be at least 1.");
            var dir = parse.GetValue(output)!.FullName;
            Core.IO.AtomicFile.DeleteAbandoned(dir);
            var tasks = parse.GetValue(task) == Both ? Enum.GetValues<StudyTask>() : [Enum.GetValues<StudyTask>().First(t => TaskName(t) == parse.GetValue(task))];
            var backbone = CratePresets.ByName(parse.GetValue(preset)!);
            if (parse.GetValue(depth) is int d) backbone = backbone with { Depth = d };
            int studySeed = parse.GetValue(seed);
            ImageDataset? train = null, test = null;
            SegmentationDataset? trainScenes = null, testSet = null;
            var dataNames = new List<string>();
            if (tasks.Contains(StudyTask.Classification))
            {
                var read = DataOptions.For(backbone) with { ClassNames = null };
                train = data.Load(parse, DataSource.FashionMnist, DataSplit.Train, read, studySeed);
                test = data.Load(parse, DataSource.FashionMnist, DataSplit.Test, read with { Limit = parse.GetValue(testLimit) }, studySeed);
                var (mean, std) = train.ChannelStatistics();
                backbone = backbone with { Mean = mean, Std = std };
                dataNames.Add($"classification: {train.Count} training and {test.Count} test images of '{data.Spec(parse, DataSource.FashionMnist)}'");
            }
            if (tasks.Contains(StudyTask.Segmentation))
            {
                var sceneOptions = new SceneOptions { Size = parse.GetValue(sceneSize) ?? 64, Seed = studySeed };
                (trainScenes, testSet) = SceneGenerator.FashionScenes(parse.GetValue(scenes) ?? 10000, parse.GetValue(testScenes) ?? 1000, sceneOptions,
                    log: m => Console.Error.WriteLine($"warning: {m}"));
                dataNames.Add($"segmentation: {trainScenes.Count} training scenes ({trainScenes.Name}) and {testSet.Count} test scenes");
            }
            int batchSize = parse.GetValue(batch) ?? 128;
            var options = new StudyOptions
            {
                Backbone = backbone,
                Tasks = tasks,
                Pretraining = new Budget(parse.GetValue(pretrainSteps) ?? 600, batchSize, 1e-3),
                Adaptation = new Budget(parse.GetValue(adaptSteps) ?? 300, batchSize, 1e-3),
                PromptTokens = parse.GetValue(promptTokens) ?? 8,
                SegmentationPatchSize = parse.GetValue(segmentationPatch) ?? 8,
                Seed = studySeed,
                CheckpointDirectory = Path.Combine(dir, ProgressFolder),
                CheckpointEverySteps = everySteps,
                Resume = parse.GetValue(resume),
            };
            Console.WriteLine($"study: {string.Join("; ", dataNames)}; backbone {options.Backbone}"
                + (trainScenes is null ? "" : $" (segmentation: the same trunk on the scenes with patch {options.SegmentationPatchSize})"));
            var cells = PretextStudy.Run(options, new StudyData(train, test, trainScenes, testSet), line => Console.WriteLine(line));
            var allBackground = testSet is null ? null : SegmentationEvaluation.AllBackground(testSet);
            StudyReport.Write(dir, cells, options, "crate " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
                new StudyReport.DataDescription(train is null ? null : data.Spec(parse, DataSource.FashionMnist), testSet?.Name, allBackground));
            Console.WriteLine(File.ReadAllText(Path.Combine(dir, "study.md")));
            Console.WriteLine($"wrote {dir}/study.md, study.html, study.png, study.json");
            return 0;
        });
        return command;
    }

    private static string TaskName(StudyTask task) => task.ToString().ToLowerInvariant();
}
