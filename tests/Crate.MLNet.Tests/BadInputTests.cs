using Microsoft.ML;
using Microsoft.ML.Data;

namespace Crate.MLNet.Tests;

/// <summary>Every mistake in the input is reported when it is made, naming the column (and the row, where one is at fault).</summary>
public class BadInputTests
{
    private static IDataView View<TRow>(MLContext ml, IEnumerable<TRow> rows) where TRow : class => ml.Data.LoadFromEnumerable(rows);

    private static readonly MLContext Ml = new(1);

    /// <summary>ML.NET makes schema shapes only internally (SchemaShape.Create); tests reach it as Crate.MLNet does.</summary>
    internal static SchemaShape ShapeOf(DataViewSchema schema) =>
        (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic, [typeof(DataViewSchema)])!
            .Invoke(null, [schema])!;

    [Test]
    public void AMissingImageColumnIsNamedWithTheColumnsThereAre()
    {
        var data = Fixture.ImageView(Ml);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath, imageColumnName: "Pixels").Fit(data));
        Assert.That(e!.Message, Does.Contain("no image column 'Pixels'").And.Contain("Image (Vector<Byte, 1, 28, 28>)"));
        var shape = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath, imageColumnName: "Pixels").GetOutputSchema(ShapeOf(data.Schema)));
        Assert.That(shape!.Message, Does.Contain("'Pixels'"));
    }

    [Test]
    public void AMistypedImageColumnIsNamedWithWhatItHoldsAndWhatIsNeeded()
    {
        var data = View(Ml, [new DoubleRow()]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data));
        Assert.That(e!.Message, Does.Contain("'Image' is Vector<Double, 784>").And.Contain("Single or Byte"));
        var text = View(Ml, [new TextRow()]);
        Assert.That(() => Ml.Transforms.ApplyCrateFeaturizer(Fixture.OnnxPath).Fit(text), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("'Image' is String"));
    }

    [Test]
    public void ImagesOfTheWrongSizeAreRefusedAtFit()
    {
        var data = View(Ml, [new WrongSizeRow()]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(data));
        Assert.That(e!.Message, Does.Contain("'Image' holds 900 values").And.Contain("1x28x28"));
    }

    [Test]
    public void TransformNamesTheColumnWhenLaterDataDoesNotFit()
    {
        var model = Ml.Transforms.ApplyCrateClassifier(Fixture.OnnxPath).Fit(Fixture.ImageView(Ml));
        var missing = View(Ml, [new TextRow()]);
        var wrongSize = View(Ml, [new WrongSizeByteRow()]);
        var wrongType = View(Ml, [new FloatRow()]);
        // ML.NET's own messages: they name the column because the scoring graph's input is named after it.
        foreach (var (what, data, detail) in new[]
        {
            ("missing", View(Ml, [new OtherNameRow()]), "Could not find"),
            ("text", missing, "got String"),
            ("size", wrongSize, "length 900"),
            ("type", wrongType, "got Vector<Single, 784>"),
        })
        {
            var e = Assert.Catch(() => model.Transform(data).GetColumn<float[]>("Score").ToArray(), what);
            Assert.That(e!.Message, Does.Contain("'Image'").And.Contain(detail), what);
        }
    }

    private sealed class DoubleRow { [VectorType(784)] public double[] Image = new double[784]; }
    private sealed class TextRow { public string Image = "a.png"; }
    private sealed class WrongSizeRow { [VectorType(900)] public float[] Image = new float[900]; }
    private sealed class WrongSizeByteRow { [VectorType(900)] public byte[] Image = new byte[900]; }
    private sealed class FloatRow { [VectorType(784)] public float[] Image = new float[784]; }
    private sealed class OtherNameRow { [VectorType(784)] public byte[] Pixels = new byte[784]; }
}
