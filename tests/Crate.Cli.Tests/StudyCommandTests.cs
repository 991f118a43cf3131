using System.Text.Json;

namespace Crate.Cli.Tests;

public class StudyCommandTests
{
    private const int Dim = 192, Classes = 10, MaskClasses = Classes + 1, PromptTokens = 3;

    /// <summary>CRATE's trunk without its classifier head, counted from its layout: embedding, positions, class token, one-layer stack.</summary>
    private static long Trunk(int side, int patch)
    {
        long patchDim = patch * patch, patches = side / patch * (side / patch);
        long embedding = 2 * patchDim + patchDim * Dim + Dim + 2 * Dim + (patches + 1) * Dim + Dim;
        long layer = 2 * Dim + Dim * Dim + Dim * Dim + Dim + 2 * Dim + Dim * Dim;
        return embedding + layer;
    }

    /// <summary>The classifier head: LayerNorm(dim) and Linear(dim, classes).</summary>
    private const long ClassifierHead = 2 * Dim + Dim * Classes + Classes;

    /// <summary>The segmentation head on 8-pixel patches of 1-channel scenes: LayerNorm(dim), Linear(dim, K*64), Conv3x3(K+1, 32), Conv3x3(32, K).</summary>
    private const long SegmentationHead = 2 * Dim + (Dim + 1L) * MaskClasses * 64 + ((MaskClasses + 1) * 9 + 1L) * 32 + (32 * 9 + 1L) * MaskClasses;

    [Test]
    public void SmallBudgetStudyTabulatesBothHalvesWithEveryCell()
    {
        var dir = Path.Combine(Path.GetTempPath(), "crate-study-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = CliRunner.Run("study", "--data", "generated", "--depth", "1", "--limit", "256", "--test-limit", "200",
                "--scenes", "64", "--test-scenes", "32", "--scene-size", "32", "--prompt-tokens", $"{PromptTokens}",
                "--pretrain-steps", "4", "--adapt-steps", "4", "--batch-size", "32", "--seed", "3", "--out", dir);
            Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
            foreach (var file in new[] { "study.md", "study.html", "study.png", "study.json" })
                Assert.That(new FileInfo(Path.Combine(dir, file)).Length, Is.GreaterThan(100), file);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "study.json")));
            var cells = json.RootElement.GetProperty("cells").EnumerateArray().ToList();
            string[] pretexts = ["Supervised", "Mae", "Rotation", "Contrastive", "Untrained"], methods = ["LinearProbe", "PromptTuning", "FineTune"];
            foreach (var task in new[] { "Classification", "Segmentation" })
                Assert.That(cells.Where(c => c.GetProperty("task").GetString() == task).Select(c => $"{c.GetProperty("pretext").GetString()} {c.GetProperty("adaptation").GetString()}"),
                    Is.EquivalentTo(pretexts.SelectMany(p => methods.Select(m => $"{p} {m}"))), $"{task}: 5 backbones (the untrained control included) x 3 methods");
            Assert.That(cells.Select(c => c.GetProperty("seed").GetInt32()), Is.All.EqualTo(3));

            long Trainable(string task, string method) => cells.Where(c => c.GetProperty("task").GetString() == task && c.GetProperty("adaptation").GetString() == method)
                .Select(c => c.GetProperty("trainable_parameters").GetInt64()).Distinct().Single();
            Assert.That(Trainable("Classification", "LinearProbe"), Is.EqualTo(ClassifierHead));
            Assert.That(Trainable("Classification", "PromptTuning"), Is.EqualTo(ClassifierHead + PromptTokens * Dim));
            Assert.That(Trainable("Classification", "FineTune"), Is.EqualTo(ClassifierHead + Trunk(28, 4)));
            Assert.That(Trainable("Segmentation", "LinearProbe"), Is.EqualTo(SegmentationHead));
            Assert.That(Trainable("Segmentation", "PromptTuning"), Is.EqualTo(SegmentationHead + PromptTokens * Dim));
            Assert.That(Trainable("Segmentation", "FineTune"), Is.EqualTo(SegmentationHead + Trunk(32, 8)));

            // The study checks each frozen trunk against its pretrained weights, bit for bit; fine-tuning changes them.
            foreach (var cell in cells)
                Assert.That(cell.GetProperty("trunk_unchanged").GetBoolean(), Is.EqualTo(cell.GetProperty("adaptation").GetString() != "FineTune"), cell.ToString());
            var segmentation = cells.Where(c => c.GetProperty("task").GetString() == "Segmentation").ToList();
            Assert.That(segmentation.Select(c => c.GetProperty("test_miou").GetDouble()), Is.All.InRange(0.0, 1.0));
            Assert.That(segmentation.Select(c => c.GetProperty("test_foreground_iou").GetDouble()), Is.All.InRange(0.0, 1.0));
            Assert.That(cells.Where(c => c.GetProperty("task").GetString() == "Classification").Select(c => c.GetProperty("test_top1").GetDouble()), Is.All.InRange(0.0, 1.0));
            Assert.That(cells.Where(c => c.GetProperty("pretext").GetString() == "Untrained").Select(c => c.GetProperty("pretext_loss").ValueKind), Is.All.EqualTo(JsonValueKind.Null));

            var md = File.ReadAllText(Path.Combine(dir, "study.md"));
            Assert.That(md, Does.Contain("## Classification (generated, test top-1)").And.Contain("## Segmentation (scenes:test").And.Contain("| Untrained (control) |")
                .And.Contain("crate study").And.Contain("Seed 3 for every cell").And.Contain("Segmentation floor: predicting background everywhere"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }

    [Test]
    public void ClassificationOnlyStudyHasNoSegmentationTable()
    {
        var dir = Path.Combine(Path.GetTempPath(), "crate-study-" + Guid.NewGuid().ToString("N"));
        try
        {
            var result = CliRunner.Run("study", "--task", "classification", "--data", "generated", "--depth", "1", "--limit", "64", "--test-limit", "32",
                "--pretrain-steps", "2", "--adapt-steps", "2", "--batch-size", "32", "--out", dir);
            Assert.That(result.ExitCode, Is.EqualTo(0), result.Error);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "study.json")));
            var tasks = json.RootElement.GetProperty("cells").EnumerateArray().Select(c => c.GetProperty("task").GetString()).ToList();
            Assert.That(tasks, Has.Count.EqualTo(15).And.All.EqualTo("Classification"), "5 backbones (the untrained control included) x 3 methods");
            Assert.That(File.ReadAllText(Path.Combine(dir, "study.md")), Does.Not.Contain("Segmentation"));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}
