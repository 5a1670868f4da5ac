import jieba

from monitor.detection.text import TextAnalyser, char_key, normalise, pinyin_keys


def test_normalise_converts_traditional_to_simplified():
    assert normalise("你這個廢物，欠錢不還") == "你这个废物,欠钱不还"


def test_normalise_full_width_and_punctuation():
    assert normalise("ＡＰＰ上還款！“上门”？") == 'app上还款!"上门"?'


def test_normalise_removes_spaces_between_chinese_characters_only():
    assert normalise("你 是 不 是 傻 逼 啊") == "你是不是傻逼啊"
    assert normalise("卡号 6222 开头") == "卡号 6222 开头"


def test_normalise_joins_a_word_masked_by_one_mark_but_keeps_a_dash_pause():
    assert normalise("你个傻*逼，废-物，人 _ 渣") == "你个傻逼,废物,人渣"
    assert normalise("我们会——依法起诉") == "我们会--依法起诉"
    assert normalise("A-1 号") == "a-1 号"


def test_normalise_reads_single_quotes_around_chinese_as_quotation_marks():
    assert normalise("骗子会说'我是公安局的'，别信") == '骗子会说"我是公安局的",别信'
    assert normalise("don't") == "don't"


def test_pinyin_keys_make_recogniser_homophones_equal():
    assert pinyin_keys("老来") == pinyin_keys("老赖")
    assert pinyin_keys("沙比") == pinyin_keys("傻逼")
    assert pinyin_keys("预期") == pinyin_keys("逾期")
    assert pinyin_keys("卫星") == pinyin_keys("微信")  # xing/xin merged
    assert pinyin_keys("立按") == pinyin_keys("立案")
    assert pinyin_keys("老师") != pinyin_keys("老赖")


def test_char_key_leaves_non_chinese_alone():
    assert char_key("a") == "a" and char_key("7") == "7"


def test_tokeniser_is_its_own_instance_with_domain_words():
    before = jieba.dt.FREQ.get("爆你通讯录")
    analyser = TextAnalyser(["爆你通讯录"])
    analysed = analyser.analyse("再不还就爆你通讯录")
    words = [analysed.norm[s:e] for s, e in analysed.tokens]
    assert "爆你通讯录" in words
    assert jieba.dt.FREQ.get("爆你通讯录") == before  # the global tokenizer is untouched


def test_token_boundaries_and_index():
    analysed = TextAnalyser().analyse("我们明天去你单位")
    assert analysed.token_index(0) == 0
    assert analysed.on_token_boundaries(0, 2)
    assert not analysed.on_token_boundaries(1, 3)


def test_normalise_reads_hokkien_you_as_ni_but_not_in_place_names():
    assert normalise("汝这个无路用的货") == "你这个无路用的货"
    assert normalise("汝州的网点") == "汝州的网点"
